import crypto from 'node:crypto';
import { decodeEntry, entryChecksum, GENESIS_CHECKSUM } from '../common/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { LOG_PREFIX_END, LOG_PREFIX_START, logKey, metaKey, MetaName, seqOfLogKey } from '../common/keys.js';
import type { Store, StoreSnapshot } from '../common/store.js';
import { TailCache } from './tail-cache.js';

export const HISTORY_ID_BYTES = 16;

/**
 * The master's view of its log: positions, the newest entries in memory, and a signal
 * for streams waiting on new commits. It never writes; the group committer is the only
 * writer and reports each durable commit through appended().
 *
 * Invariant: firstSeq <= lastSeq + 1 (equal when the log is empty), and every seq in
 * [firstSeq, lastSeq] has a stored entry whose checksum chains from the one before.
 */
export class Wal {
  private readonly tail = new TailCache();
  private signal = deferred();

  private constructor(
    readonly db: Store,
    readonly historyId: Buffer,
    public firstSeq: bigint,
    public lastSeq: bigint,
    public lastChecksum: number,
    public lastCommitTimeMs: number,
  ) {}

  /** Recovers positions from the store, creating a new history for a new store. */
  static async open(db: Store): Promise<Wal> {
    let historyId = await db.get(metaKey(MetaName.HISTORY_ID));
    const first = await edgeEntry(db, false);
    const last = await edgeEntry(db, true);
    if (!historyId) {
      if (last) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, 'the store has log entries but no history id');
      historyId = crypto.randomBytes(HISTORY_ID_BYTES);
      await db.put(metaKey(MetaName.HISTORY_ID), historyId, { sync: true });
    }
    if (!first || !last) return new Wal(db, historyId, 1n, 0n, GENESIS_CHECKSUM, 0);
    const decoded = decodeEntry(last.value);
    if (decoded.seq !== last.seq) {
      throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log key ${last.seq} holds the entry of seq ${decoded.seq}`);
    }
    return new Wal(db, historyId, first.seq, last.seq, decoded.checksum, decoded.commitTimeMs);
  }

  /** Called by the single writer once entries [fromSeq, fromSeq + n) are durable. */
  appended(fromSeq: bigint, entries: readonly Buffer[], commitTimeMs: number): void {
    // Invariant: the writer commits exactly the next seqs, in order.
    if (fromSeq !== this.lastSeq + 1n) throw new Error(`append at ${fromSeq} after ${this.lastSeq}`);
    this.tail.append(fromSeq, entries);
    this.lastSeq += BigInt(entries.length);
    this.lastChecksum = entryChecksum(entries[entries.length - 1]);
    this.lastCommitTimeMs = commitTimeMs;
    this.wake();
  }

  /** Resolves on the next commit or wake(), or after timeoutMs. */
  waitForCommit(timeoutMs: number): Promise<void> {
    const signal = this.signal.promise;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      void signal.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Wakes every waiting stream (on commit, and on shutdown so streams can end). */
  wake(): void {
    const old = this.signal;
    this.signal = deferred();
    old.resolve();
  }

  /**
   * Up to maxEntries consecutive entries starting exactly at fromSeq (at least one if
   * fromSeq <= lastSeq, maxBytes permitting more). Never skips: if fromSeq is no longer
   * stored it throws LOG_TRIMMED, and a hole inside the range is CORRUPT_ENTRY.
   */
  async read(fromSeq: bigint, maxEntries: number, maxBytes: number): Promise<Buffer[]> {
    const cached = this.tail.read(fromSeq, maxEntries, maxBytes);
    if (cached) return cached;
    if (fromSeq < this.firstSeq) throw logTrimmed(fromSeq, this.firstSeq);
    const it = this.db.iterator({ gte: logKey(fromSeq), lt: LOG_PREFIX_END });
    try {
      const rows = await it.nextv(maxEntries);
      const out: Buffer[] = [];
      let bytes = 0;
      for (const [key, value] of rows) {
        const expected = fromSeq + BigInt(out.length);
        const seq = seqOfLogKey(key);
        if (seq !== expected) {
          if (out.length === 0 && seq > expected) throw logTrimmed(fromSeq, seq);
          throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log has a hole: expected seq ${expected}, found ${seq}`);
        }
        if (out.length > 0 && bytes + value.length > maxBytes) break;
        out.push(value);
        bytes += value.length;
      }
      if (out.length === 0 && fromSeq <= this.lastSeq) throw logTrimmed(fromSeq, this.firstSeq);
      return out;
    } finally {
      await it.close();
    }
  }

  async entryAt(seq: bigint): Promise<Buffer | undefined> {
    return this.tail.get(seq) ?? (await this.db.get(logKey(seq)));
  }
}

function logTrimmed(fromSeq: bigint, firstSeq: bigint): ReplicatorError {
  return new ReplicatorError(ErrorCode.LOG_TRIMMED, `seq ${fromSeq} is no longer in the master's log, which starts at seq ${firstSeq}`);
}

async function edgeEntry(db: Store, reverse: boolean): Promise<{ seq: bigint; value: Buffer } | undefined> {
  const it = db.iterator({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END, reverse, limit: 1 });
  try {
    const row = await it.next();
    return row ? { seq: seqOfLogKey(row[0]), value: row[1] } : undefined;
  } finally {
    await it.close();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The master's last committed seq as seen by a snapshot: the newest log key in it. */
export async function lastSeqAt(db: Store, snapshot: StoreSnapshot): Promise<bigint> {
  const it = db.iterator({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END, reverse: true, limit: 1, values: false, snapshot });
  try {
    const row = await it.next();
    return row ? seqOfLogKey(row[0]) : 0n;
  } finally {
    await it.close();
  }
}
