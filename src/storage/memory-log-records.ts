import { ErrorCode, isReplicatorError } from '../common/errors.js';
import { chainsFrom, decodeEntry, GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import type { LogBase } from './interfaces.js';
import { LOG_PREFIX_END, LOG_PREFIX_START, logKey, metaKey, MetaName, seqOfLogKey } from './layout.js';
import type { BatchOp, DiskHandle } from './memory-disk.js';

/**
 * How a memory log lies on its disk (the same records for a master and a follower, so a
 * disk opens in either role): one record per entry under logKey(seq), and the base (the
 * entry before the first) under LOG_BASE, written in the batch that trims up to it.
 */
export const LOG_BASE_KEY = metaKey(MetaName.LOG_BASE);
export const GENESIS_BASE: LogBase = { seq: 0n, checksum: GENESIS_CHECKSUM, commitTimeMs: 0 };

/** The puts that store entries firstSeq, firstSeq + 1, ... (a follower's apply writes them with the data). */
export function logEntryOps(firstSeq: bigint, entries: readonly Buffer[]): BatchOp[] {
  return entries.map((value, i) => ({ type: 'put', key: logKey(firstSeq + BigInt(i)), value }));
}

/** The operations that empty the log and start it after `base` (a follower's snapshot switch). */
export function restartLogOps(base: LogBase): BatchOp[] {
  return [
    { type: 'clear', gte: LOG_PREFIX_START, lt: LOG_PREFIX_END },
    { type: 'put', key: LOG_BASE_KEY, value: encodeLogBase(base) },
  ];
}

export interface VerifiedLog {
  base: LogBase;
  last: LogBase;
  /** The first bad entry, and the log records from it on (what a repair deletes). */
  corrupt?: { seq: bigint; reason: string; keys: Buffer[] };
}

/**
 * Walks the whole log from its base: every entry well formed, stored under its own seq,
 * following the previous seq and chaining from the previous checksum. Stops at the first
 * bad one, reporting the position up to which the log is intact.
 */
export function verifyMemoryLog(disk: DiskHandle): VerifiedLog {
  const snap = disk.snapshot();
  const stored = snap.get(LOG_BASE_KEY);
  const base = stored ? decodeLogBase(stored) : GENESIS_BASE;
  const rows = snap.range(LOG_PREFIX_START, LOG_PREFIX_END);
  let last = base;
  for (let i = 0; i < rows.length; i++) {
    const [key, value] = rows[i];
    const bad = (seq: bigint, reason: string): VerifiedLog => ({ base, last, corrupt: { seq, reason, keys: rows.slice(i).map(([k]) => k) } });
    let entry;
    try {
      entry = decodeEntry(value);
    } catch (err) {
      if (isReplicatorError(err, ErrorCode.CORRUPT_ENTRY)) return bad(last.seq + 1n, err.message);
      throw err;
    }
    if (entry.seq !== last.seq + 1n) return bad(last.seq + 1n, `the log jumps from seq ${last.seq} to seq ${entry.seq}`);
    if (seqOfLogKey(key) !== entry.seq) return bad(entry.seq, `the entry of seq ${entry.seq} is stored under seq ${seqOfLogKey(key)}`);
    if (!chainsFrom(value, last.checksum)) return bad(entry.seq, 'its checksum does not match its bytes and the previous entry');
    last = { seq: entry.seq, checksum: entry.checksum, commitTimeMs: entry.commitTimeMs };
  }
  return { base, last };
}

/** The base record: u64 seq, u32 checksum, u64 commit time (the LevelDB log's LOG_BASE). */
export function encodeLogBase(base: LogBase): Buffer {
  const b = Buffer.allocUnsafe(20);
  b.writeBigUInt64BE(base.seq, 0);
  b.writeUInt32BE(base.checksum, 8);
  b.writeBigUInt64BE(BigInt(base.commitTimeMs), 12);
  return b;
}

function decodeLogBase(b: Buffer): LogBase {
  return { seq: b.readBigUInt64BE(0), checksum: b.readUInt32BE(8), commitTimeMs: Number(b.readBigUInt64BE(12)) };
}
