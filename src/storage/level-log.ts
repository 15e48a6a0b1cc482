import crypto from 'node:crypto';
import { entryChecksum, entryCommitTimeMs, entrySeq } from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { ReplicationLog, SlotRecord } from './interfaces.js';
import { LOG_PREFIX_END, logKey, metaKey, MetaName, seqOfLogKey } from './layout.js';
import { writeBatch, type BatchOp, type Store, type StoreSnapshot } from './level-store.js';
import { u32 } from './layout.js';
import { chunkOf, splitChunk, type EncodedChunks } from './log-chunk.js';
import { encodeLogBase, readLogBase, truncateLogFrom, verifyLog } from './log-verify.js';
import { slotPut } from './slot-records.js';
import { TailCache } from './tail-cache.js';
import { AppendSignal, logTrimmed } from './append-signal.js';

export const HISTORY_ID_BYTES = 16;

/**
 * The master's log in its LevelDB store (as chunks, see log-chunk.ts): positions, the
 * newest entries in memory, and a signal for streams waiting on new entries. It never
 * appends itself: LevelMasterStore.commitGroup writes a group's chunks with its data and
 * reports each durable commit through appended(). It deletes only in trimTo().
 *
 * Invariant: firstSeq <= lastSeq + 1 (equal when the log is empty), and every seq in
 * [firstSeq, lastSeq] has a stored entry whose checksum chains from the one before.
 */
export class LevelLog implements ReplicationLog {
  private readonly tail = new TailCache();
  /** The chunk read from the store last (readers of the log mostly read on from where they were). */
  private recentChunk: StoredChunk | undefined;
  private readonly signal = new AppendSignal();

  private constructor(
    private readonly db: Store,
    readonly historyId: Buffer,
    readonly epoch: number,
    public firstSeq: bigint,
    public lastSeq: bigint,
    public lastChecksum: number,
    public lastCommitTimeMs: number,
  ) {}

  /**
   * Recovers positions from the store, creating a new history for a new store. The whole
   * log is verified first: a corrupt entry stops the start with CORRUPT_ENTRY (nothing is
   * served past it), unless repairLog asks to drop the log from that entry on and start a
   * new history (followers then resynchronise by snapshot).
   */
  static async open(db: Store, { repairLog = false, log }: { repairLog?: boolean; log?: Logger } = {}): Promise<LevelLog> {
    let historyId = await db.get(metaKey(MetaName.HISTORY_ID));
    const epochBuf = await db.get(metaKey(MetaName.EPOCH));
    let v = await verifyLog(db);
    if (!historyId) {
      if (v.lastSeq > 0n) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, 'the store has log entries but no history id');
      historyId = crypto.randomBytes(HISTORY_ID_BYTES);
      await writeBatch(
        db,
        [
          { type: 'put', key: metaKey(MetaName.HISTORY_ID), value: historyId },
          { type: 'put', key: metaKey(MetaName.EPOCH), value: u32(1) },
        ],
        { sync: true },
      );
    }
    if (v.corrupt) {
      const { seq, reason } = v.corrupt;
      if (!repairLog) {
        throw new ReplicatorError(
          ErrorCode.CORRUPT_ENTRY,
          `log entry ${seq} is corrupt (${reason}); the log is intact up to seq ${v.lastSeq}. ` +
            'Refusing to serve past it; start with --repair-log to drop the log from that entry and start a new history',
        );
      }
      historyId = crypto.randomBytes(HISTORY_ID_BYTES);
      await truncateLogFrom(db, seq, historyId);
      log?.warn({ corruptSeq: seq.toString(), reason, historyId: historyId.toString('hex') }, 'log repaired: dropped the log from the corrupt entry and started a new history');
      v = await verifyLog(db);
    }
    const epoch = epochBuf ? epochBuf.readUInt32BE() : 1;
    return new LevelLog(db, historyId, epoch, v.firstSeq, v.lastSeq, v.lastChecksum, v.lastCommitTimeMs);
  }

  /**
   * Called by the single writer once entries [fromSeq, fromSeq + n) are durable. The
   * entries are only valid during this call (the writer reuses their memory): the tail
   * cache copies them.
   */
  appended(fromSeq: bigint, group: EncodedChunks, commitTimeMs: number): void {
    // Invariant: the writer commits exactly the next seqs, in order.
    if (fromSeq !== this.lastSeq + 1n) throw new Error(`append at ${fromSeq} after ${this.lastSeq}`);
    this.tail.appendEncoded(fromSeq, group.buf, group.starts, group.ends);
    this.lastSeq += BigInt(group.starts.length);
    this.lastChecksum = group.lastChecksum;
    this.lastCommitTimeMs = commitTimeMs;
    this.wake();
  }

  /** Resolves on the next append or wake(), or after timeoutMs. */
  waitForAppend(timeoutMs: number): Promise<void> {
    return this.signal.wait(timeoutMs);
  }

  /** Wakes every waiting stream (on append, and on shutdown so streams can end). */
  wake(): void {
    this.signal.wake();
  }

  /**
   * Up to maxEntries consecutive entries starting exactly at fromSeq (at least one if
   * fromSeq <= lastSeq, maxBytes permitting more). Never skips: if fromSeq is no longer
   * stored it throws LOG_TRIMMED, and a hole inside the range is CORRUPT_ENTRY.
   * Entries come from the in-memory tail when they are there, else from the stored
   * chunks (each at most about one stream message's worth, see log-chunk.ts).
   */
  async read(fromSeq: bigint, maxEntries: number, maxBytes: number): Promise<Buffer[]> {
    // Trimmed entries may linger in the tail: below firstSeq is LOG_TRIMMED all the same.
    if (fromSeq < this.firstSeq) throw logTrimmed(fromSeq, this.firstSeq);
    // Copies: the tail's views are only valid until the next commit (see readCached).
    const cached = this.readCached(fromSeq, maxEntries, maxBytes);
    if (cached) return cached.map((e) => Buffer.from(e));
    const out: Buffer[] = [];
    let bytes = 0;
    let expected = fromSeq;
    /** Takes entries of a chunk from `expected` on; false once a limit is reached. */
    const take = ({ first, last, entries }: StoredChunk): boolean => {
      for (let i = Number(expected - first); i < entries.length; i++) {
        const e = entries[i];
        if (out.length >= maxEntries || (out.length > 0 && bytes + e.length > maxBytes)) return false;
        if (entrySeq(e) !== expected) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log chunk ${last} holds seq ${entrySeq(e)} where seq ${expected} belongs`);
        out.push(e);
        bytes += e.length;
        expected++;
      }
      return true;
    };
    // Consecutive messages, and followers at about the same place, read the same chunk:
    // it is read from LevelDB once, not once per message per follower.
    const recent = this.recentChunk;
    if (recent && fromSeq >= recent.first && fromSeq <= recent.last && !take(recent)) return out;
    const it = this.db.iterator({ gte: logKey(expected), lt: LOG_PREFIX_END });
    try {
      while (out.length < maxEntries) {
        const row = await it.next();
        if (!row) break;
        const entries = splitChunk(row[1]);
        const last = seqOfLogKey(row[0]);
        const chunk: StoredChunk = { first: last - BigInt(entries.length) + 1n, last, entries };
        if (chunk.first > expected) {
          if (out.length === 0) throw logTrimmed(fromSeq, chunk.first);
          throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log has a hole: expected seq ${expected}, found seq ${chunk.first}`);
        }
        this.recentChunk = chunk;
        if (!take(chunk)) break;
      }
      if (out.length === 0 && fromSeq <= this.lastSeq) throw logTrimmed(fromSeq, this.firstSeq);
      return out;
    } finally {
      await it.close();
    }
  }

  /**
   * Like read, but only from the in-memory tail: entries this process committed, sealed by
   * its group committer (undefined when fromSeq is not there). No copy: the Buffers are
   * views into the tail's ring, valid until the next commit, so encode them before any await.
   */
  readCached(fromSeq: bigint, maxEntries: number, maxBytes: number): Buffer[] | undefined {
    return this.tail.read(fromSeq, maxEntries, maxBytes);
  }

  async entryAt(seq: bigint): Promise<Buffer | undefined> {
    if (seq < this.firstSeq || seq > this.lastSeq) return undefined; // trimmed entries may linger in the tail
    return this.tail.get(seq) ?? (await storedEntryAt(this.db, seq));
  }

  async checksumAt(seq: bigint): Promise<number | undefined> {
    if (seq === this.lastSeq) return this.lastChecksum;
    if (seq >= this.firstSeq) {
      const entry = await this.entryAt(seq);
      return entry ? entryChecksum(entry) : undefined;
    }
    // Below the log: only the base (the last trimmed entry, or seq 0) is still known.
    const base = await readLogBase(this.db);
    return base.seq === seq ? base.checksum : undefined;
  }

  /** LevelDB's estimate of the log's bytes from seq to its end: table files only, not the memtable. */
  bytesFrom(seq: bigint): Promise<number> {
    return this.db.approximateSize(logKey(seq), LOG_PREFIX_END);
  }

  /**
   * Deletes the oldest chunks below target (lastSeq at most), about maxEntries entries'
   * worth (whole chunks), in one batch with the new log base and the given slots. A chunk
   * that straddles the new first seq is rewritten under its key (its last seq) without the
   * entries below it, so trimming is exact to the entry. Small steps keep each LevelDB
   * write short, so commits never stall behind a trim. With nothing to trim, the slots
   * are still written (alone).
   */
  async trimTo(target: bigint, maxEntries: bigint, slots: readonly SlotRecord[] = []): Promise<bigint> {
    // Invariant: the newest entry is never trimmed, so lastSeq stays served.
    const newFirstSeq = target > this.lastSeq ? this.lastSeq : target;
    const ops: BatchOp[] = [];
    let boundary: Buffer | undefined; // the newest entry trimmed
    const oldFirst = this.firstSeq;
    let newFirst = oldFirst;
    const it = this.db.iterator({ gte: logKey(oldFirst), lt: LOG_PREFIX_END });
    try {
      while (newFirst < newFirstSeq && newFirst - oldFirst < maxEntries) {
        const row = await it.next();
        if (!row) break;
        const [key, value] = row;
        const last = seqOfLogKey(key);
        const entries = splitChunk(value);
        if (last < newFirstSeq) {
          ops.push({ type: 'del', key });
          boundary = entries[entries.length - 1];
          newFirst = last + 1n;
        } else {
          const keep = entries.length - Number(last - newFirstSeq) - 1; // index of newFirstSeq's entry
          if (keep <= 0) break;
          ops.push({ type: 'put', key, value: chunkOf(entries.slice(keep)) });
          boundary = entries[keep - 1];
          newFirst = newFirstSeq;
        }
      }
    } finally {
      await it.close();
    }
    if (!boundary) {
      if (slots.length > 0) await writeBatch(this.db, slots.map(slotPut), { sync: false });
      return this.firstSeq;
    }
    ops.push({
      type: 'put',
      key: metaKey(MetaName.LOG_BASE),
      value: encodeLogBase({ seq: newFirst - 1n, checksum: entryChecksum(boundary), commitTimeMs: entryCommitTimeMs(boundary) }),
    });
    for (const s of slots) ops.push(slotPut(s));
    // Readers learn the new first seq before the entries go, so nobody is offered a
    // position that is about to disappear.
    if (newFirst > this.firstSeq) this.firstSeq = newFirst;
    await writeBatch(this.db, ops, { sync: false });
    return this.firstSeq;
  }
}

/** The stored entry at seq (read from the chunk holding it), as seen by snapshot if given. */
export async function storedEntryAt(db: Store, seq: bigint, snapshot?: StoreSnapshot): Promise<Buffer | undefined> {
  const it = db.iterator({ gte: logKey(seq), lt: LOG_PREFIX_END, limit: 1, ...(snapshot ? { snapshot } : {}) });
  try {
    const row = await it.next();
    if (!row) return undefined;
    const entries = splitChunk(row[1]);
    const index = entries.length - 1 - Number(seqOfLogKey(row[0]) - seq);
    return index >= 0 && entrySeq(entries[index]) === seq ? entries[index] : undefined;
  } finally {
    await it.close();
  }
}

interface StoredChunk {
  first: bigint;
  last: bigint;
  entries: Buffer[];
}
