import { entryChecksum, entryCommitTimeMs } from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { PairHasher } from '../storage/digest.js';
import { DATA_KEY_PREFIX_BYTES, dataRange } from '../storage/layout.js';
import type { Logger } from '../common/logger.js';
import { seqToWire } from '../wire/seq.js';
import type { Store, StoreSnapshot } from '../storage/level-store.js';
import type { SnapshotInfo } from '../wire/generated/levelreplicator/v1/SnapshotInfo.js';
import { MASTER_DATA_GEN } from './group-commit.js';
import { SnapshotReader } from '../storage/snapshot-reader.js';
import { encodeSnapshotRows, type EncodedResponse } from '../wire/subscribe-encoder.js';
import { lastSeqAt, storedEntryAt } from '../storage/master-log.js';

/**
 * Pairs per chunk message (fewer, larger chunks cost less per pair on both sides), and a
 * byte bound: a chunk ends with the pair that crosses it, so it stays far below the gRPC
 * cap (at most this plus one largest key and value).
 */
export const SNAPSHOT_CHUNK_PAIRS = 4_096;
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

export interface TakenSnapshot {
  snapshot: StoreSnapshot;
  seq: bigint;
  info: SnapshotInfo;
}

/**
 * Takes a point-in-time LevelDB snapshot of the master and reads, from that same snapshot,
 * the seq it corresponds to and that entry's checksum: data and position always agree.
 * LevelDB snapshots do not block writers, so taking and streaming one never stalls writes.
 */
export async function takeSnapshot(db: Store): Promise<TakenSnapshot> {
  const snapshot = db.snapshot();
  try {
    const seq = await lastSeqAt(db, snapshot);
    const entry = seq === 0n ? undefined : await storedEntryAt(db, seq, snapshot);
    if (seq > 0n && !entry) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `snapshot at seq ${seq} has no log entry for it`);
    // A progress estimate only: table files (compressed) plus the memtable, which
    // approximateSize does not see and which holds all of a young store's data.
    const range = dataRange(MASTER_DATA_GEN);
    const approxBytes = (await db.approximateSize(range.gte, range.lt)) + Number(db.getProperty('leveldb.approximate-memory-usage') || 0);
    return {
      snapshot,
      seq,
      info: {
        seq: seqToWire(seq),
        checksum: entry ? entryChecksum(entry) : 0,
        commitTimeMs: String(entry ? entryCommitTimeMs(entry) : 0),
        approxBytes: String(approxBytes),
      },
    };
  } catch (err) {
    await snapshot.close();
    throw err;
  }
}

/**
 * Streams every pair of a taken snapshot in key order, in chunks (one per read: at most
 * SNAPSHOT_CHUNK_PAIRS pairs, about SNAPSHOT_CHUNK_BYTES), each encoded straight from the
 * rows read (no pair objects, no key views), through send(), which resolves when the
 * transport can take more (backpressure). Returns the count and the digest (same framing
 * as the Digest RPC) for the follower to verify.
 */
export async function streamSnapshot(
  db: Store,
  taken: TakenSnapshot,
  send: (chunk: EncodedResponse) => Promise<boolean>,
  log: Logger,
): Promise<{ keys: bigint; digest: string }> {
  const hash = new PairHasher();
  const hashPair = (src: Buffer, keyStart: number, keyEnd: number, value: Buffer) => hash.update(src, value, keyStart, keyEnd);
  let keys = 0n;
  const reader = new SnapshotReader(db, taken.snapshot, dataRange(MASTER_DATA_GEN), SNAPSHOT_CHUNK_PAIRS, SNAPSHOT_CHUNK_BYTES);
  try {
    for (;;) {
      // The next read runs (off the main thread) while this one's pairs are encoded and sent.
      const rows = await reader.next();
      if (rows.length === 0) break;
      const chunk = encodeSnapshotRows(rows, DATA_KEY_PREFIX_BYTES, hashPair);
      keys += BigInt(rows.length);
      if (!(await send(chunk))) return { keys, digest: '' };
    }
  } finally {
    await reader.close();
  }
  log.debug({ keys: keys.toString(), seq: taken.seq.toString() }, 'snapshot streamed');
  return { keys, digest: hash.digest() };
}
