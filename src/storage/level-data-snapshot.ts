import type { DataSnapshot, SnapshotRows } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, DATA_GEN_KEY, DATA_KEY_PREFIX_BYTES, dataRange } from './layout.js';
import type { Store, StoreSnapshot } from './level-store.js';
import { SnapshotReader } from './snapshot-reader.js';

/** Keys per read of countKeys(), and the byte bound of one read (classic-level's default stops at 16 KiB). */
const COUNT_BATCH_KEYS = 16_384;
const COUNT_BATCH_BYTES = 1024 * 1024;

/**
 * A point-in-time copy of a node's data (master or follower: the same layout) on a LevelDB
 * snapshot. The active generation, the seq the data corresponds to and that entry's
 * checksum are read from the same LevelDB snapshot as the data (both roles write the
 * position in the batch of the data it describes), so data and position always agree.
 * LevelDB snapshots do not block writers, so taking and reading one never stalls commits
 * or applies.
 */
export class LevelDataSnapshot implements DataSnapshot {
  /** Rows' keys are data keys: the layout's prefix, then the user key. */
  readonly keyOffset = DATA_KEY_PREFIX_BYTES;

  private constructor(
    private readonly db: Store,
    private readonly snapshot: StoreSnapshot,
    /** The generation the data is in. */
    private readonly gen: number,
    readonly seq: bigint,
    readonly checksum: number,
    readonly commitTimeMs: number,
    readonly approxBytes: number,
  ) {}

  static async take(db: Store): Promise<LevelDataSnapshot> {
    const snapshot = db.snapshot();
    try {
      const [seqBuf, checksumBuf, timeBuf, genBuf] = await db.getMany([APPLIED_SEQ_KEY, APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, DATA_GEN_KEY], { snapshot });
      const seq = seqBuf ? seqBuf.readBigUInt64BE() : 0n;
      const gen = genBuf ? genBuf.readUInt32BE() : 0;
      // A progress estimate only: table files (compressed) plus the memtable, which
      // approximateSize does not see and which holds all of a young store's data.
      const range = dataRange(gen);
      const approxBytes = (await db.approximateSize(range.gte, range.lt)) + Number(db.getProperty('leveldb.approximate-memory-usage') || 0);
      return new LevelDataSnapshot(db, snapshot, gen, seq, checksumBuf ? checksumBuf.readUInt32BE() : 0, timeBuf ? Number(timeBuf.readBigUInt64BE()) : 0, approxBytes);
    } catch (err) {
      await snapshot.close();
      throw err;
    }
  }

  /** The data in key order; see SnapshotReader for how rows are read (text keys, prefetch). */
  rows(pairs: number, bytes: number): SnapshotRows {
    return new SnapshotReader(this.db, this.snapshot, dataRange(this.gen), pairs, bytes);
  }

  /**
   * Counts the pairs in large batches of keys; values are never copied out (LevelDB
   * still walks their blocks, in the thread pool). Keys come as text, the cheapest form
   * classic-level makes (see SnapshotReader), yet each is still a string made on the main
   * thread: that, not the walk, is the count's cost. The count does not care how a key
   * decodes. The iterator is closed before this settles, so the snapshot may then be
   * closed.
   */
  async countKeys(signal: AbortSignal): Promise<bigint> {
    signal.throwIfAborted();
    const it = this.db.keys<string | Buffer>({ ...dataRange(this.gen), snapshot: this.snapshot, keyEncoding: 'utf8', highWaterMarkBytes: COUNT_BATCH_BYTES });
    let keys = 0n;
    try {
      for (;;) {
        signal.throwIfAborted();
        const batch = await it.nextv(COUNT_BATCH_KEYS);
        if (batch.length === 0) return keys;
        keys += BigInt(batch.length);
      }
    } finally {
      await it.close();
    }
  }

  close(): Promise<void> {
    return this.snapshot.close();
  }
}
