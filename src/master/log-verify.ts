import { chainsFrom, decodeEntry, entryChecksum, GENESIS_CHECKSUM } from '../common/entry-codec.js';
import { ErrorCode, isReplicatorError } from '../common/errors.js';
import { LOG_PREFIX_END, LOG_PREFIX_START, logKey, metaKey, MetaName, seqOfLogKey } from '../common/keys.js';
import { writeBatch, type BatchOp, type Store } from '../common/store.js';

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

const CHUNK = 1_000;

/**
 * Reads the whole log in order and checks that every entry is well formed, has the seq
 * of its key, follows the previous seq, and chains from the previous checksum (from the
 * log base for the first entry). Stops at the first bad entry and reports it with the
 * position up to which the log is intact.
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
  const it = db.iterator({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END });
  try {
    for (;;) {
      const rows = await it.nextv(CHUNK);
      if (rows.length === 0) return result();
      for (const [key, value] of rows) {
        const keySeq = seqOfLogKey(key);
        firstSeq ??= keySeq;
        if (keySeq !== seq + 1n) return result({ seq: seq + 1n, reason: `the log jumps from seq ${seq} to seq ${keySeq}` });
        try {
          const entry = decodeEntry(value);
          if (entry.seq !== keySeq) return result({ seq: keySeq, reason: `the entry stored at seq ${keySeq} says it is seq ${entry.seq}` });
          if (!chainsFrom(value, checksum)) return result({ seq: keySeq, reason: 'its checksum does not match its bytes and the previous entry' });
          seq = keySeq;
          checksum = entryChecksum(value);
          commitTimeMs = entry.commitTimeMs;
        } catch (err) {
          if (isReplicatorError(err, ErrorCode.CORRUPT_ENTRY)) return result({ seq: keySeq, reason: err.message });
          throw err;
        }
      }
    }
  } finally {
    await it.close();
  }
}

/**
 * Repair after corruption: drops the log from the bad entry on (the data those entries
 * wrote stays in the store) and starts a new history, so every follower notices the
 * break and resynchronises by snapshot instead of trusting entries it cannot verify.
 */
export async function truncateLogFrom(db: Store, seq: bigint, newHistoryId: Buffer): Promise<void> {
  // One batch: a crash never leaves a shortened log under the old history, which would
  // let followers of the old history continue without the dropped entries' writes.
  const ops: BatchOp[] = [];
  for await (const key of db.keys({ gte: logKey(seq), lt: LOG_PREFIX_END })) ops.push({ type: 'del', key });
  ops.push({ type: 'put', key: metaKey(MetaName.HISTORY_ID), value: newHistoryId });
  await writeBatch(db, ops, { sync: true });
}
