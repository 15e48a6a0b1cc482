import type { SnapshotRow } from '../wire/subscribe-encoder.js';
import type { Store, StoreSnapshot } from './level-store.js';


const REPLACEMENT_CHAR = '\ufffd';

/**
 * Reads a key range of a LevelDB snapshot in key order (the master's snapshots, store
 * digests), up to `pairs` pairs (about `bytes`) per read, the next read running off the
 * main thread while the caller works on the current one.
 *
 * Keys are read as text while every key is valid UTF-8. During a snapshot the master's
 * main thread is the limit, and classic-level makes a key string about three times more
 * cheaply than a key Buffer (measured: the main thread's cost of a 1M-pair scan fell by a
 * quarter). The first batch holding a key that is not valid UTF-8 is read again as bytes,
 * and so is the rest of the range.
 *
 * Invariant: a text key is exactly the stored bytes. V8 turns every invalid UTF-8
 * sequence (overlong forms, encoded surrogates, code points past U+10FFFF, truncated
 * sequences) into U+FFFD, so a batch is kept as text only if no key contains U+FFFD, and
 * valid UTF-8 re-encodes to the same bytes. (A key holding a real U+FFFD merely takes the
 * byte path.) Consumers work in bytes (a key prefix is skipped as bytes after encoding),
 * so how a prefix happens to decode does not matter.
 */
export class SnapshotReader {
  private text = true;
  private it: ReturnType<typeof openIterator>;
  private reading: Promise<SnapshotRow[]>;
  /** The last key returned, as text (for the switch to bytes). */
  private lastTextKey: string | undefined;

  constructor(
    private readonly db: Store,
    private readonly snapshot: StoreSnapshot,
    private readonly range: { gte: Buffer; lt: Buffer },
    private readonly pairs: number,
    private readonly bytes: number,
  ) {
    this.it = openIterator(db, snapshot, range, 'utf8', bytes);
    this.reading = this.prefetch();
  }

  /** The next batch of pairs; empty once the range is read. */
  async next(): Promise<SnapshotRow[]> {
    let rows = await this.reading;
    if (this.text && rows.some(([k]) => (k as string).includes(REPLACEMENT_CHAR))) {
      await this.switchToBytes();
      rows = await this.reading;
    }
    if (rows.length > 0) {
      if (this.text) this.lastTextKey = rows[rows.length - 1][0] as string;
      this.reading = this.prefetch();
    }
    return rows;
  }

  async close(): Promise<void> {
    await this.reading.catch(() => undefined);
    await this.it.close();
  }

  /** Re-reads from just after the last key returned, with Buffer keys, to the end. */
  private async switchToBytes(): Promise<void> {
    await this.it.close();
    this.text = false;
    const after = this.lastTextKey === undefined ? { gte: this.range.gte } : { gt: Buffer.from(this.lastTextKey, 'utf8') };
    this.it = openIterator(this.db, this.snapshot, { ...after, lt: this.range.lt }, 'buffer', this.bytes);
    this.reading = this.prefetch();
  }

  /**
   * The next read, started now. A failure is kept for next() to throw: it is marked
   * handled at once, or it would be an unhandled rejection (fatal) while the caller is
   * still busy sending the previous batch.
   */
  private prefetch(): Promise<SnapshotRow[]> {
    const p = this.it.nextv(this.pairs);
    p.catch(() => undefined);
    return p;
  }
}

function openIterator(db: Store, snapshot: StoreSnapshot, range: { gte?: Buffer; gt?: Buffer; lt: Buffer }, keyEncoding: 'utf8' | 'buffer', bytes: number) {
  // highWaterMarkBytes: classic-level stops a nextv() at 16 KiB by default (about 130
  // pairs of the benchmark), and each call is a trip to the thread pool.
  return db.iterator<string | Buffer, Buffer>({ ...range, snapshot, keyEncoding, valueEncoding: 'buffer', highWaterMarkBytes: bytes });
}
