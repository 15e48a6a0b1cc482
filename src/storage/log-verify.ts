import { chainsFrom, decodeEntry, GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import { ErrorCode, isReplicatorError } from '../common/errors.js';
import { LOG_PREFIX_END, LOG_PREFIX_START, metaKey, MetaName, seqOfLogKey } from './layout.js';
import type { Store } from './level-store.js';
import { ChunkFramingError, splitChunk } from './log-chunk.js';

/** The entry just before the log's first one (seq 0, checksum 0 for an untrimmed log). */
export interface LogBase {
  seq: bigint;
  checksum: number;
  commitTimeMs: number;
}

export const GENESIS_BASE: LogBase = { seq: 0n, checksum: GENESIS_CHECKSUM, commitTimeMs: 0 };

export function encodeLogBase(base: LogBase): Buffer {
  const b = Buffer.allocUnsafe(20);
  b.writeBigUInt64BE(base.seq, 0);
  b.writeUInt32BE(base.checksum, 8);
  b.writeBigUInt64BE(BigInt(base.commitTimeMs), 12);
  return b;
}

export async function readLogBase(db: Store): Promise<LogBase> {
  const b = await db.get(metaKey(MetaName.LOG_BASE));
  if (!b) return GENESIS_BASE;
  return { seq: b.readBigUInt64BE(0), checksum: b.readUInt32BE(8), commitTimeMs: Number(b.readBigUInt64BE(12)) };
}

export interface VerifiedLog {
  base: LogBase;
  firstSeq: bigint;
  lastSeq: bigint;
  lastChecksum: number;
  lastCommitTimeMs: number;
  /** Set when verification stopped at a bad entry; everything before it is intact. */
  corrupt?: { seq: bigint; reason: string };
}

/**
 * For the previous layout's log (chunk records inside LevelDB; upgrade-store.ts converts
 * it, and the memory stores still keep their log this way).
 *
 * Reads the whole log in order and checks that every chunk is well framed and every entry
 * is well formed, follows the previous seq, and chains from the previous checksum (from
 * the log base for the first entry), and that each chunk is stored under its last seq.
 * Stops at the first bad entry and reports it with the position up to which the log is
 * intact.
 */
export async function verifyLog(db: Store): Promise<VerifiedLog> {
  const base = await readLogBase(db);
  let seq = base.seq;
  let checksum = base.checksum;
  let commitTimeMs = base.commitTimeMs;
  let firstSeq: bigint | undefined;
  const result = (corrupt?: VerifiedLog['corrupt']): VerifiedLog => ({
    base,
    firstSeq: firstSeq ?? base.seq + 1n,
    lastSeq: seq,
    lastChecksum: checksum,
    lastCommitTimeMs: commitTimeMs,
    corrupt,
  });
  /** Checks one entry; returns why it is bad, or undefined and advances the position. */
  const check = (value: Buffer): { seq: bigint; reason: string } | undefined => {
    try {
      const entry = decodeEntry(value);
      firstSeq ??= entry.seq;
      if (entry.seq !== seq + 1n) return { seq: seq + 1n, reason: `the log jumps from seq ${seq} to seq ${entry.seq}` };
      if (!chainsFrom(value, checksum)) return { seq: entry.seq, reason: 'its checksum does not match its bytes and the previous entry' };
      seq = entry.seq;
      checksum = entry.checksum;
      commitTimeMs = entry.commitTimeMs;
      return undefined;
    } catch (err) {
      if (isReplicatorError(err, ErrorCode.CORRUPT_ENTRY)) return { seq: seq + 1n, reason: err.message };
      throw err;
    }
  };
  const it = db.iterator({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END });
  try {
    for (;;) {
      const row = await it.next();
      if (!row) return result();
      const [key, chunk] = row;
      let entries: Buffer[];
      let framing: ChunkFramingError | undefined;
      try {
        entries = splitChunk(chunk);
      } catch (err) {
        if (!(err instanceof ChunkFramingError)) throw err;
        entries = err.intact;
        framing = err;
      }
      for (const value of entries) {
        const bad = check(value);
        if (bad) return result(bad);
      }
      if (framing) return result({ seq: seq + 1n, reason: framing.message });
      const keySeq = seqOfLogKey(key);
      if (keySeq !== seq) return result({ seq: seq + 1n, reason: `the log chunk stored under seq ${keySeq} ends at seq ${seq}` });
    }
  } finally {
    await it.close();
  }
}
