import crypto from 'node:crypto';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { entryChecksum, entryCommitTimeMs } from '../wire/entry-codec.js';
import { AppendSignal, logTrimmed } from './append-signal.js';
import { formatHistory, parseHistory, type EpochHistory } from './epoch-history.js';
import type { EpochLog, LogBase, SlotRecord } from './interfaces.js';
import { HISTORY_ID_KEY, logKey, metaKey, MetaName } from './layout.js';
import type { BatchOp, DiskHandle } from './memory-disk.js';
import { encodeLogBase, LOG_BASE_KEY, verifyMemoryLog } from './memory-log-records.js';
import { slotOps } from './memory-slots.js';
import { LogEpochs } from './log-epochs.js';
import { defaultHistory } from './log-markers.js';
import { NO_HISTORY } from './replica-recovery.js';

const EPOCH_KEY = metaKey(MetaName.EPOCH);
const EPOCHS_KEY = metaKey(MetaName.EPOCHS);
export const HISTORY_ID_BYTES = 16;

export interface MemoryLogOptions {
  repairLog?: boolean;
  log?: Logger;
  /**
   * A master's log gets a new history id when the disk has none; a follower's has none
   * (NO_HISTORY) until it applies entries of one.
   */
  role?: 'master' | 'replica';
}

/**
 * A node's log on a memory disk (memory-log-records.ts: the same entry bytes LevelDB keeps
 * in its segments), with the same rules as the segment log: verified whole at open,
 * trimmed exactly to the entry, the newest entry never trimmed, the epoch history durable
 * (in the EPOCHS record). A master's store appends by writing entries with their data in
 * one write; a follower's writes the entries it applies with their data and position, so
 * the log and the data agree in every state of the disk, and a disk opens in either role.
 *
 * Invariant: base.seq = firstSeq - 1, firstSeq <= lastSeq + 1, and every seq in
 * [firstSeq, lastSeq] has a record whose checksum chains from the one before (from the
 * base for firstSeq). The positions move only once the write that makes them true landed.
 */
export class MemoryLog implements EpochLog {
  private readonly signal = new AppendSignal();
  /** The first seq this process appended (readCached serves only those, as the segment log's tail cache does). */
  private appendedFrom: bigint;
  private readonly history: LogEpochs;

  private constructor(
    private readonly disk: DiskHandle,
    private id: Buffer,
    epochs: EpochHistory,
    private base: LogBase,
    private last: LogBase,
  ) {
    this.appendedFrom = last.seq + 1n;
    this.history = new LogEpochs(epochs, (h) => this.writeEpochs(h));
  }

  /**
   * Recovers the log from the disk, creating a new history for a new master store. A
   * corrupt entry stops the open with CORRUPT_ENTRY, unless repairLog asks to drop the log
   * from that entry on and start a new history (what the segment log does).
   */
  static async open(disk: DiskHandle, { repairLog = false, log, role = 'master' }: MemoryLogOptions = {}): Promise<MemoryLog> {
    let historyId = disk.get(HISTORY_ID_KEY);
    let v = verifyMemoryLog(disk);
    if (!historyId) {
      if (v.last.seq > 0n) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, 'the store has log entries but no history id');
      if (role === 'master') {
        historyId = crypto.randomBytes(HISTORY_ID_BYTES);
        await disk.write('create', [{ type: 'put', key: HISTORY_ID_KEY, value: historyId }], { sync: true });
      }
    }
    if (v.corrupt) {
      const { seq, reason, keys } = v.corrupt;
      if (!repairLog) {
        throw new ReplicatorError(
          ErrorCode.CORRUPT_ENTRY,
          `log entry ${seq} is corrupt (${reason}); the log is intact up to seq ${v.last.seq}. ` +
            'Refusing to serve past it; start with --repair-log to drop the log from that entry and start a new history',
        );
      }
      // One write: a shortened log is never seen under the old history.
      historyId = crypto.randomBytes(HISTORY_ID_BYTES);
      const ops: BatchOp[] = keys.map((key) => ({ type: 'del', key }));
      ops.push({ type: 'put', key: HISTORY_ID_KEY, value: historyId });
      await disk.write('repair', ops, { sync: true });
      log?.warn({ corruptSeq: seq.toString(), reason, historyId: historyId.toString('hex') }, 'log repaired: dropped the log from the corrupt entry and started a new history');
      v = verifyMemoryLog(disk);
    }
    return new MemoryLog(disk, historyId ? Buffer.from(historyId) : NO_HISTORY, readEpochs(disk), v.base, v.last);
  }

  get historyId(): Buffer {
    return this.id;
  }

  get epochs(): EpochHistory {
    return this.history.history;
  }

  get epoch(): number {
    return this.history.epoch;
  }

  beginEpoch(epoch: number, firstSeq: bigint): Promise<void> {
    return this.history.begin(epoch, firstSeq, this.last.seq + 1n);
  }

  adoptEpochs(history: EpochHistory): Promise<void> {
    return this.history.adopt(history);
  }

  /** The position just before the first entry. */
  get logBase(): LogBase {
    return { ...this.base };
  }

  /**
   * Reads the log back from the disk (a follower's store after a failed write, which may
   * have landed): verified again, so its positions are the disk's.
   */
  reload(): void {
    const v = verifyMemoryLog(this.disk);
    if (v.corrupt) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log entry ${v.corrupt.seq} is corrupt (${v.corrupt.reason})`);
    this.base = v.base;
    this.last = v.last;
    this.appendedFrom = v.last.seq + 1n;
    this.id = Buffer.from(this.disk.get(HISTORY_ID_KEY) ?? NO_HISTORY);
    this.history.reset(readEpochs(this.disk));
    this.wake();
  }

  /** The store's report that it emptied the log and started it after base (restartLogOps landed). */
  restartedAt(base: LogBase, historyId: Buffer): void {
    this.base = { ...base };
    this.last = { ...base };
    this.appendedFrom = base.seq + 1n;
    this.id = Buffer.from(historyId);
    this.wake();
  }

  get firstSeq(): bigint {
    return this.base.seq + 1n;
  }
  get lastSeq(): bigint {
    return this.last.seq;
  }
  get lastChecksum(): number {
    return this.last.checksum;
  }
  get lastCommitTimeMs(): number {
    return this.last.commitTimeMs;
  }

  /**
   * The writer's report that entries firstSeq..lastSeq landed (of history historyId, when
   * a follower's first entries start one).
   */
  appended(firstSeq: bigint, lastSeq: bigint, lastChecksum: number, commitTimeMs: number, historyId?: Buffer): void {
    // Invariant: the single writer commits exactly the next seqs, in order.
    if (firstSeq !== this.last.seq + 1n) throw new Error(`append at ${firstSeq} after ${this.last.seq}`);
    this.last = { seq: lastSeq, checksum: lastChecksum, commitTimeMs };
    if (historyId && !historyId.equals(this.id)) this.id = Buffer.from(historyId);
    this.wake();
  }

  async read(fromSeq: bigint, maxEntries: number, maxBytes: number): Promise<Buffer[]> {
    if (fromSeq < this.firstSeq) throw logTrimmed(fromSeq, this.firstSeq);
    return this.collect(fromSeq, maxEntries, maxBytes).map((e) => Buffer.from(e));
  }

  readCached(fromSeq: bigint, maxEntries: number, maxBytes: number): Buffer[] | undefined {
    if (fromSeq < this.appendedFrom || fromSeq < this.firstSeq || fromSeq > this.last.seq) return undefined;
    return this.collect(fromSeq, maxEntries, maxBytes);
  }

  async entryAt(seq: bigint): Promise<Buffer | undefined> {
    if (seq < this.firstSeq || seq > this.last.seq) return undefined;
    const e = this.disk.get(logKey(seq));
    return e && Buffer.from(e);
  }

  async checksumAt(seq: bigint): Promise<number | undefined> {
    if (seq === this.base.seq) return this.base.checksum;
    if (seq < this.firstSeq || seq > this.last.seq) return undefined;
    const e = this.disk.get(logKey(seq));
    return e && entryChecksum(e);
  }

  async bytesFrom(seq: bigint): Promise<number> {
    let bytes = 0;
    for (let s = seq < this.firstSeq ? this.firstSeq : seq; s <= this.last.seq; s++) bytes += this.disk.get(logKey(s))?.length ?? 0;
    return bytes;
  }

  async trimTo(newFirstSeq: bigint, maxEntries: bigint, slots?: readonly SlotRecord[]): Promise<bigint> {
    const first = this.firstSeq;
    let to = newFirstSeq;
    if (to > this.last.seq) to = this.last.seq; // the newest entry is never trimmed
    if (to > first + maxEntries) to = first + maxEntries;
    if (to <= first) {
      if (slots && slots.length > 0) await this.disk.write('slots', slotOps(slots), { sync: false });
      return first;
    }
    const boundary = this.disk.get(logKey(to - 1n));
    if (!boundary) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log has a hole: no entry at seq ${to - 1n}`);
    const base: LogBase = { seq: to - 1n, checksum: entryChecksum(boundary), commitTimeMs: entryCommitTimeMs(boundary) };
    const ops: BatchOp[] = [];
    for (let s = first; s < to; s++) ops.push({ type: 'del', key: logKey(s) });
    ops.push({ type: 'put', key: LOG_BASE_KEY, value: encodeLogBase(base) });
    if (slots) ops.push(...slotOps(slots));
    // Readers learn the new first seq before the entries go, so nobody is offered a
    // position that is about to disappear.
    this.base = base;
    try {
      await this.disk.write('trim', ops, { sync: false });
    } catch (err) {
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot trim the log to seq ${to}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
    return to;
  }

  waitForAppend(timeoutMs: number): Promise<void> {
    return this.signal.wait(timeoutMs);
  }

  wake(): void {
    this.signal.wake();
  }

  /** Consecutive stored entries from fromSeq (>= firstSeq) within the limits, as the disk's buffers. */
  private collect(fromSeq: bigint, maxEntries: number, maxBytes: number): Buffer[] {
    const out: Buffer[] = [];
    let bytes = 0;
    for (let s = fromSeq; s <= this.last.seq && out.length < maxEntries; s++) {
      const e = this.disk.get(logKey(s));
      if (!e) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log has a hole: no entry at seq ${s}`);
      if (out.length > 0 && bytes + e.length > maxBytes) break;
      out.push(e);
      bytes += e.length;
    }
    return out;
  }

  private async writeEpochs(h: EpochHistory): Promise<void> {
    try {
      await this.disk.write('epochs', [{ type: 'put', key: EPOCHS_KEY, value: Buffer.from(formatHistory(h), 'utf8') }], { sync: true });
    } catch (err) {
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot write the log's epoch history: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** The disk's epoch history: its EPOCHS record, else the epoch an earlier version recorded (or 1) from seq 1. */
function readEpochs(disk: DiskHandle): EpochHistory {
  const text = disk.get(EPOCHS_KEY);
  if (text) return parseHistory(text.toString('utf8'), "log's epochs record");
  return defaultHistory(disk.get(EPOCH_KEY)?.readUInt32BE() ?? 1);
}
