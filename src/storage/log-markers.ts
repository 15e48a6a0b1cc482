import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { formatHistory, frozenHistory, parseHistory, type EpochHistory } from './epoch-history.js';
import type { LogFiles } from './log-files.js';

/**
 * The two small files a segment log keeps beside its segments, each replaced atomically
 * and durably (LogFiles.replace), so a crash leaves the old one or the new one:
 *
 *   first-seq  u64 big-endian: the logical first seq (trimming is exact to the entry,
 *              deletion is by whole segment)
 *   epochs     the epoch history as text (epoch-history.ts formatHistory)
 */
export const FIRST_SEQ_FILE = 'first-seq';
export const EPOCHS_FILE = 'epochs';

export async function readFirstSeq(files: LogFiles): Promise<bigint | undefined> {
  if (!(await files.list()).includes(FIRST_SEQ_FILE)) return undefined;
  const b = Buffer.alloc(8);
  return (await files.read(FIRST_SEQ_FILE, b, 0, 8, 0)) === 8 ? b.readBigUInt64BE() : undefined;
}

export async function writeFirstSeq(files: LogFiles, seq: bigint): Promise<void> {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(seq);
  await files.replace(FIRST_SEQ_FILE, b);
}

/**
 * The history in the epochs file, or undefined when there is none (a log of a version
 * before epochs, or one that never changed epoch). CORRUPT_ENTRY for a file that does not
 * parse: written atomically, it is never torn, so that is damage.
 */
export async function readEpochs(files: LogFiles): Promise<EpochHistory | undefined> {
  if (!(await files.list()).includes(EPOCHS_FILE)) return undefined;
  const size = await files.size(EPOCHS_FILE);
  const b = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const n = await files.read(EPOCHS_FILE, b, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  return parseHistory(b.subarray(0, got).toString('utf8'), 'log\'s epochs file');
}

/** Replaces the epochs file with h, durably: resolved means it survives a power loss. */
export async function writeEpochs(files: LogFiles, h: EpochHistory): Promise<void> {
  try {
    await files.replace(EPOCHS_FILE, Buffer.from(formatHistory(h), 'utf8'));
  } catch (err) {
    throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot write the log's epoch history: ${(err as Error).message}`, { cause: err });
  }
}

/** The history of a log without an epochs file: its oldest segment's epoch from seq 1. */
export function defaultHistory(epoch: number): EpochHistory {
  return frozenHistory([{ epoch, firstSeq: 1n }]);
}
