import crypto from 'node:crypto';
import type { Logger } from '../common/logger.js';
import { GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import { lastEpoch, type EpochHistory } from './epoch-history.js';
import type { LogBase } from './interfaces.js';
import type { LogFiles } from './log-files.js';
import { defaultHistory, readEpochs, readFirstSeq } from './log-markers.js';
import { encodeHeader, HEADER_BYTES, segmentName } from './segment-format.js';
import { recoverSegments, type Segment } from './segment-recovery.js';

export const HISTORY_ID_BYTES = 16;
const GENESIS: LogBase = { seq: 0n, checksum: GENESIS_CHECKSUM, commitTimeMs: 0 };

export interface OpenLogOptions {
  repairLog?: boolean;
  log?: Logger;
  /** The first segment of an empty directory (default: a new history at seq 0, epoch 1). */
  init?: { historyId: Buffer; epoch: number; base: LogBase };
}

/** What a log directory holds once verified: what SegmentLog starts from. */
export interface OpenedLog {
  /** Oldest first; never empty. */
  segments: Segment[];
  firstSeq: bigint;
  history: EpochHistory;
  /** Set when repairLog dropped the log from a bad entry on. */
  repaired?: { seq: bigint; reason: string };
}

/**
 * Reads a log directory for SegmentLog.open (and a reopen): verifies every segment (see
 * recoverSegments, which also removes temp files of a replace cut short), reads the epoch
 * history (absent: the oldest segment's epoch from seq 1), and makes sure there is an
 * active segment: an empty directory gets `init` (or a new history at seq 0); a repaired
 * log continues in a new segment under a new history.
 */
export async function openSegments(files: LogFiles, opts: OpenLogOptions): Promise<OpenedLog> {
  await files.ensureDir();
  const { segments, repaired } = await recoverSegments(files, opts);
  const stored = await readEpochs(files);
  const epoch = stored ? lastEpoch(stored) : undefined;
  if (segments.length === 0) {
    const init = opts.init ?? { historyId: crypto.randomBytes(HISTORY_ID_BYTES), epoch: 1, base: repaired ? { ...GENESIS, seq: repaired.seq - 1n } : GENESIS };
    segments.push(await createSegment(files, { historyId: init.historyId, epoch: epoch ?? init.epoch, base: init.base }));
  } else if (repaired) {
    const last = segments[segments.length - 1];
    const historyId = crypto.randomBytes(HISTORY_ID_BYTES);
    // A segment left with no record (the damage was its first) gives way to the new one.
    if (last.size === HEADER_BYTES) {
      await files.remove(last.name);
      segments.pop();
    }
    segments.push(await createSegment(files, { historyId, epoch: epoch ?? last.header.epoch, base: last.last }));
    opts.log?.warn({ corruptSeq: repaired.seq.toString(), reason: repaired.reason, historyId: historyId.toString('hex') }, 'log repaired: dropped the log from the corrupt entry and started a new history');
  }
  const history = stored ?? defaultHistory(segments[0].header.epoch);
  const lastSeq = segments[segments.length - 1].last.seq;
  let firstSeq = segments[0].header.base.seq + 1n;
  const marker = await readFirstSeq(files);
  if (marker !== undefined && marker > firstSeq) firstSeq = marker > lastSeq ? (lastSeq >= firstSeq ? lastSeq : firstSeq) : marker;
  return { segments, firstSeq, history, repaired };
}

/** Creates a segment starting after base: header written and synced, its name durable. */
export async function createSegment(files: LogFiles, header: { historyId: Buffer; epoch: number; base: LogBase }): Promise<Segment> {
  const name = segmentName(header.base.seq + 1n);
  const bytes = encodeHeader(header);
  await files.create(name);
  await files.write(name, bytes, 0, bytes.length, 0);
  await files.sync(name);
  await files.syncDir();
  return { name, header: { ...header, base: { ...header.base } }, last: { ...header.base }, size: HEADER_BYTES, index: [] };
}
