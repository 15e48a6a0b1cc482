import crypto from 'node:crypto';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { chainsFrom, decodeEntry, entryChecksum, entryCommitTimeMs, GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import type { LogBase, ReplicationLog, SlotRecord } from './interfaces.js';
import { LOG_PREFIX_END, LOG_PREFIX_START, logKey, metaKey, MetaName, seqOfLogKey } from './layout.js';
import type { BatchOp, DiskHandle } from './memory-disk.js';
import { slotOps } from './memory-slots.js';
import { AppendSignal, logTrimmed } from './append-signal.js';

const HISTORY_ID_KEY = metaKey(MetaName.HISTORY_ID);
const EPOCH_KEY = metaKey(MetaName.EPOCH);
const LOG_BASE_KEY = metaKey(MetaName.LOG_BASE);
export const HISTORY_ID_BYTES = 16;
const GENESIS_BASE: LogBase = { seq: 0n, checksum: GENESIS_CHECKSUM, commitTimeMs: 0 };

/**
 * The master's log on a memory disk: one record per entry under logKey(seq) (the same
 * entry bytes LevelDB keeps in its chunks), the base (the entry before the first) under
 * LOG_BASE, in the same records and with the same rules as the LevelDB log: verified
 * whole at open, trimmed exactly to the entry, the newest entry never trimmed.
 *
 * Invariant: base.seq = firstSeq - 1, firstSeq <= lastSeq + 1, and every seq in
 * [firstSeq, lastSeq] has a record whose checksum chains from the one before (from the
 * base for firstSeq). The positions move only once the write that makes them true landed.
 */
export class MemoryLog implements ReplicationLog {
  private readonly signal = new AppendSignal();
  /** The first seq this process appended (readCached serves only those, as the LevelDB tail cache does). */
  private appendedFrom: bigint;

  private constructor(
    private readonly disk: DiskHandle,
    readonly historyId: Buffer,
    readonly epoch: number,
    private base: LogBase,
    private last: LogBase,
  ) {
    this.appendedFrom = last.seq + 1n;
  }

  /**
   * Recovers the log from the disk, creating a new history for a new store. A corrupt
   * entry stops the open with CORRUPT_ENTRY, unless repairLog asks to drop the log from
   * that entry on and start a new history (what the LevelDB log does).
   */
  static async open(disk: DiskHandle, { repairLog = false, log }: { repairLog?: boolean; log?: Logger } = {}): Promise<MemoryLog> {
    let historyId = disk.get(HISTORY_ID_KEY);
    let v = verify(disk);
    if (!historyId) {
      if (v.last.seq > 0n) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, 'the store has log entries but no history id');
      historyId = crypto.randomBytes(HISTORY_ID_BYTES);
      const epoch = Buffer.alloc(4);
      epoch.writeUInt32BE(1);
      const create: BatchOp[] = [
        { type: 'put', key: HISTORY_ID_KEY, value: historyId },
        { type: 'put', key: EPOCH_KEY, value: epoch },
      ];
      await disk.write('create', create, { sync: true });
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
      v = verify(disk);
    }
    const epoch = disk.get(EPOCH_KEY)?.readUInt32BE() ?? 1;
    return new MemoryLog(disk, Buffer.from(historyId), epoch, v.base, v.last);
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

  /** The committer's report that entries firstSeq..lastSeq landed. */
  appended(firstSeq: bigint, lastSeq: bigint, lastChecksum: number, commitTimeMs: number): void {
    // Invariant: the single writer commits exactly the next seqs, in order.
    if (firstSeq !== this.last.seq + 1n) throw new Error(`append at ${firstSeq} after ${this.last.seq}`);
    this.last = { seq: lastSeq, checksum: lastChecksum, commitTimeMs };
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
}

interface Verified {
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
function verify(disk: DiskHandle): Verified {
  const snap = disk.snapshot();
  const stored = snap.get(LOG_BASE_KEY);
  const base = stored ? decodeLogBase(stored) : GENESIS_BASE;
  const rows = snap.range(LOG_PREFIX_START, LOG_PREFIX_END);
  let last = base;
  for (let i = 0; i < rows.length; i++) {
    const [key, value] = rows[i];
    const bad = (seq: bigint, reason: string): Verified => ({ base, last, corrupt: { seq, reason, keys: rows.slice(i).map(([k]) => k) } });
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
function encodeLogBase(base: LogBase): Buffer {
  const b = Buffer.allocUnsafe(20);
  b.writeBigUInt64BE(base.seq, 0);
  b.writeUInt32BE(base.checksum, 8);
  b.writeBigUInt64BE(BigInt(base.commitTimeMs), 12);
  return b;
}

function decodeLogBase(b: Buffer): LogBase {
  return { seq: b.readBigUInt64BE(0), checksum: b.readUInt32BE(8), commitTimeMs: Number(b.readBigUInt64BE(12)) };
}
