import crypto from 'node:crypto';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { entryChecksum, GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import { AppendSignal, logTrimmed } from './append-signal.js';
import type { LogBase, ReplicationLog, SlotRecord } from './interfaces.js';
import type { LogFiles } from './log-files.js';
import { encodeHeader, HEADER_BYTES, INDEX_STRIDE, segmentName } from './segment-format.js';
import { SegmentReader } from './segment-reader.js';
import { recoverSegments, type Segment } from './segment-recovery.js';
import { TailCache } from './tail-cache.js';

export const HISTORY_ID_BYTES = 16;
/** A segment is closed and a new one started once the next group would take it past this size. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const GENESIS: LogBase = { seq: 0n, checksum: GENESIS_CHECKSUM, commitTimeMs: 0 };
/** The logical first seq (u64), kept across restarts: trimming is exact to the entry, deletion is by whole segment. */
const FIRST_SEQ_FILE = 'first-seq';

export interface SegmentLogOptions {
  repairLog?: boolean;
  log?: Logger;
  maxSegmentBytes?: number;
}

/**
 * Persists what a trim must persist before it deletes segments (set by the store that owns
 * the log): the slots, and, when `deleting`, a synced store write, so that the store durably
 * reflects every entry of the segments about to go (recovery must never need them again).
 */
export type TrimHook = (slots: readonly SlotRecord[], deleting: boolean) => Promise<void>;

/**
 * A node's log as append-only segment files (format: segment-format.ts). The single writer
 * appends a group with one write and, when syncing, one fdatasync, then publishes it once
 * the store has its changes: readers see only entries that are durable (when syncing) and
 * whose changes the store holds. Trimming moves firstSeq exactly and deletes whole
 * segments below it. Its history id and epoch are those of its newest segment.
 *
 * Invariant: firstSeq <= lastSeq + 1, lastSeq <= written.seq, and every seq in
 * [firstSeq, lastSeq] is in a segment, chained from the one before.
 */
export class SegmentLog implements ReplicationLog {
  private readonly tail = new TailCache();
  private readonly signal = new AppendSignal();
  private readonly reader: SegmentReader;
  /** The newest entry written (durable once synced), published or not. */
  private written: LogBase;
  private failure: ReplicatorError | undefined;
  /** Appends since the active segment's last sync (written without sync). */
  private unsynced = false;
  trimHook: TrimHook | undefined;
  /**
   * The highest first seq a trim may move to (set by a store that publishes entries before
   * its own write of them: the store's seq + 1), so no segment holding an entry the store
   * lacks is deleted. Unset: lastSeq is the limit.
   */
  trimLimit: bigint | undefined;
  firstSeq: bigint;
  lastSeq: bigint;
  lastChecksum: number;
  lastCommitTimeMs: number;

  private constructor(
    private readonly files: LogFiles,
    private readonly segments: Segment[],
    firstSeq: bigint,
    private readonly maxSegmentBytes: number,
  ) {
    const last = segments[segments.length - 1].last;
    this.written = { ...last };
    this.firstSeq = firstSeq;
    this.lastSeq = last.seq;
    this.lastChecksum = last.checksum;
    this.lastCommitTimeMs = last.commitTimeMs;
    this.reader = new SegmentReader(files, segments);
  }

  get historyId(): Buffer {
    return this.active.header.historyId;
  }

  get epoch(): number {
    return this.active.header.epoch;
  }

  /** The entry just before the first segment's first entry. */
  get physicalBase(): LogBase {
    return this.segments[0].header.base;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1];
  }

  /**
   * Opens the log in `files`, verifying it whole (see recoverSegments). An empty directory
   * gets a first segment: `init` when given, else a new history at seq 0. With repairLog a
   * damaged log is cut at the bad entry and continues under a new history.
   */
  static async open(
    files: LogFiles,
    opts: SegmentLogOptions & { init?: { historyId: Buffer; epoch: number; base: LogBase } } = {},
  ): Promise<SegmentLog & { repaired?: { seq: bigint; reason: string } }> {
    await files.ensureDir();
    const { segments, repaired } = await recoverSegments(files, opts);
    const maxBytes = opts.maxSegmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (segments.length === 0) {
      const init = opts.init ?? { historyId: crypto.randomBytes(HISTORY_ID_BYTES), epoch: 1, base: repaired ? { ...GENESIS, seq: repaired.seq - 1n } : GENESIS };
      segments.push(await createSegment(files, { historyId: init.historyId, epoch: init.epoch, base: init.base }));
    } else if (repaired) {
      const last = segments[segments.length - 1];
      const historyId = crypto.randomBytes(HISTORY_ID_BYTES);
      // A segment left with no record (the damage was its first) gives way to the new one.
      if (last.size === HEADER_BYTES) {
        await files.remove(last.name);
        segments.pop();
      }
      segments.push(await createSegment(files, { historyId, epoch: last.header.epoch, base: last.last }));
      opts.log?.warn({ corruptSeq: repaired.seq.toString(), reason: repaired.reason, historyId: historyId.toString('hex') }, 'log repaired: dropped the log from the corrupt entry and started a new history');
    }
    const lastSeq = segments[segments.length - 1].last.seq;
    let firstSeq = segments[0].header.base.seq + 1n;
    const marker = await readFirstSeq(files);
    if (marker !== undefined && marker > firstSeq) firstSeq = marker > lastSeq ? (lastSeq >= firstSeq ? lastSeq : firstSeq) : marker;
    const log = new SegmentLog(files, segments, firstSeq, maxBytes) as SegmentLog & { repaired?: { seq: bigint; reason: string } };
    if (repaired) log.repaired = repaired;
    return log;
  }

  /**
   * Writes entries written.seq + 1, ... (framed records, back to back, in `records`;
   * entry i's record ends at recordEnds[i]) with one write and, when sync, one fdatasync.
   * Not visible to readers until publish(). One append at a time (the single writer). A
   * failure leaves the end of the log unknown: every later append fails until the log is
   * reopened (recovery then cuts whatever part of it tore).
   */
  async append(records: Buffer, recordEnds: ArrayLike<number>, count: number, last: LogBase, sync: boolean): Promise<void> {
    if (this.failure) throw this.failure;
    const bytes = recordEnds[count - 1];
    try {
      let seg = this.active;
      if (seg.size > HEADER_BYTES && seg.size + bytes > this.maxSegmentBytes) seg = await this.roll();
      if (sync) {
        // O_DSYNC makes this write's bytes durable, not earlier unsynced ones: sync those first.
        if (this.unsynced) await this.syncAll();
        await this.files.writeDurable(seg.name, records, 0, bytes, seg.size);
      } else {
        await this.files.write(seg.name, records, 0, bytes, seg.size);
        this.unsynced = true;
      }
      // Index every INDEX_STRIDE-th record of the segment.
      const firstIndex = Number(this.written.seq - seg.header.base.seq); // records already in seg
      for (let i = 0; i < count; i++) {
        if ((firstIndex + i) % INDEX_STRIDE === 0) seg.index.push(seg.size + (i === 0 ? 0 : recordEnds[i - 1]));
      }
      seg.size += bytes;
      seg.last = { ...last };
      this.written = { ...last };
    } catch (err) {
      this.failure = new ReplicatorError(ErrorCode.STORE_FAILED, `cannot append to the log: ${(err as Error).message}`, { cause: err });
      throw this.failure;
    }
  }

  /**
   * Lowers firstSeq to seq (not below the oldest segment): recovery replays entries the
   * persisted trim point had already given up, when the store lost its newest writes.
   */
  lowerFirstSeq(seq: bigint): void {
    const physical = this.physicalBase.seq + 1n;
    const to = seq < physical ? physical : seq;
    if (to < this.firstSeq) this.firstSeq = to;
  }

  /** Syncs the active segment if anything was appended to it without sync. */
  async syncAll(): Promise<void> {
    if (!this.unsynced) return;
    await this.files.sync(this.active.name);
    this.unsynced = false;
  }

  /** Whether an append failed (the log must be reopened before it is written again). */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The newest entry written (published or not). */
  get writtenPosition(): LogBase {
    return { ...this.written };
  }

  /**
   * Makes appended entries visible to readers (after the store holds their changes).
   * The entries' bytes are src[starts[i], ends[i]) or, without starts/ends, the entries
   * themselves; the tail cache copies them.
   */
  publish(fromSeq: bigint, entries: { src: Buffer; starts: Uint32Array; ends: Uint32Array } | readonly Buffer[], last: LogBase): void {
    // Invariant: entries are published exactly in order, and only once written.
    if (fromSeq !== this.lastSeq + 1n || last.seq > this.written.seq) throw new Error(`publish ${fromSeq}..${last.seq} after ${this.lastSeq} (written ${this.written.seq})`);
    if (Array.isArray(entries)) this.tail.append(fromSeq, entries);
    else {
      const e = entries as { src: Buffer; starts: Uint32Array; ends: Uint32Array };
      this.tail.appendEncoded(fromSeq, e.src, e.starts, e.ends);
    }
    this.lastSeq = last.seq;
    this.lastChecksum = last.checksum;
    this.lastCommitTimeMs = last.commitTimeMs;
    this.wake();
  }

  /** Closes the active segment and starts the next one (its header synced, its name durable). */
  private async roll(): Promise<Segment> {
    await this.syncAll();
    const seg = await createSegment(this.files, { historyId: this.historyId, epoch: this.epoch, base: this.written });
    this.segments.push(seg);
    return seg;
  }

  /**
   * Replaces the whole log by an empty one at `base` (a replica that installed a snapshot,
   * or whose store is ahead of its log; a repaired master). The old segments go first, then
   * the new one is created durably: a crash between leaves no segment, and the next open
   * then starts the log at the store's position (a replica) or refuses a store ahead of an
   * empty log until --repair-log (a master) — never a log that disagrees with its store.
   */
  async reset(base: LogBase, historyId: Buffer, epoch: number): Promise<void> {
    const old = this.segments.splice(0);
    for (const s of old) await this.files.remove(s.name);
    await this.files.remove(FIRST_SEQ_FILE);
    this.segments.push(await createSegment(this.files, { historyId, epoch, base }));
    this.tail.clear();
    this.reader.forget();
    this.written = { ...base };
    this.firstSeq = base.seq + 1n;
    this.lastSeq = base.seq;
    this.lastChecksum = base.checksum;
    this.lastCommitTimeMs = base.commitTimeMs;
    this.failure = undefined;
    this.wake();
  }

  waitForAppend(timeoutMs: number): Promise<void> {
    return this.signal.wait(timeoutMs);
  }

  wake(): void {
    this.signal.wake();
  }

  async read(fromSeq: bigint, maxEntries: number, maxBytes: number): Promise<Buffer[]> {
    if (fromSeq < this.firstSeq) throw logTrimmed(fromSeq, this.firstSeq);
    if (fromSeq > this.lastSeq) return [];
    const cached = this.tail.read(fromSeq, maxEntries, maxBytes);
    if (cached) return cached.map((e) => Buffer.from(e));
    return this.reader.read(fromSeq, this.lastSeq, maxEntries, maxBytes);
  }

  readCached(fromSeq: bigint, maxEntries: number, maxBytes: number): Buffer[] | undefined {
    if (fromSeq < this.firstSeq) return undefined;
    return this.tail.read(fromSeq, maxEntries, maxBytes);
  }

  async entryAt(seq: bigint): Promise<Buffer | undefined> {
    if (seq < this.firstSeq || seq > this.lastSeq) return undefined;
    return this.tail.get(seq) ?? (await this.reader.read(seq, seq, 1, Infinity))[0];
  }

  async checksumAt(seq: bigint): Promise<number | undefined> {
    if (seq === this.lastSeq) return this.lastChecksum;
    if (seq > this.lastSeq || seq < this.firstSeq - 1n) return undefined;
    const base = this.physicalBase;
    if (seq === base.seq) return base.checksum;
    const entry = this.tail.get(seq) ?? (await this.reader.read(seq, seq, 1, Infinity))[0];
    return entry ? entryChecksum(entry) : undefined;
  }

  async bytesFrom(seq: bigint): Promise<number> {
    if (seq > this.lastSeq) return 0;
    if (seq < this.firstSeq) seq = this.firstSeq;
    return this.reader.bytesFrom(seq);
  }

  /**
   * Moves firstSeq to newFirstSeq (lastSeq at most) and deletes every segment wholly below
   * it, the active one never. The trim hook persists the slots first, and, before any
   * segment is deleted, makes the store durable past it. maxEntries does not apply:
   * deleting a file costs the same whatever it holds.
   */
  async trimTo(target: bigint, _maxEntries: bigint, slots: readonly SlotRecord[] = []): Promise<bigint> {
    let newFirst = target > this.lastSeq ? this.lastSeq : target;
    if (this.trimLimit !== undefined && newFirst > this.trimLimit) newFirst = this.trimLimit;
    const doomed = this.segments.filter((s, i) => i < this.segments.length - 1 && s.last.seq < newFirst);
    if (newFirst <= this.firstSeq && doomed.length === 0) {
      if (slots.length > 0) await this.trimHook?.(slots, false);
      return this.firstSeq;
    }
    // Readers learn the new first seq before anything goes.
    if (newFirst > this.firstSeq) this.firstSeq = newFirst;
    await this.trimHook?.(slots, doomed.length > 0);
    await writeFirstSeq(this.files, this.firstSeq);
    if (doomed.length > 0) {
      this.segments.splice(0, doomed.length);
      for (const s of doomed) {
        this.reader.dropSegment(s.name);
        await this.files.remove(s.name);
      }
    }
    return this.firstSeq;
  }

  /** Whether the oldest segment (not the active one) holds only seqs below seq: a trim to seq would delete it. */
  oldestSegmentEndsBefore(seq: bigint): boolean {
    return this.segments.length > 1 && this.segments[0].last.seq < seq;
  }

  close(): Promise<void> {
    this.wake();
    return this.files.close();
  }
}

/** Creates a segment starting after base: header written and synced, its name durable. */
async function createSegment(files: LogFiles, header: { historyId: Buffer; epoch: number; base: LogBase }): Promise<Segment> {
  const name = segmentName(header.base.seq + 1n);
  const bytes = encodeHeader(header);
  await files.create(name);
  await files.write(name, bytes, 0, bytes.length, 0);
  await files.sync(name);
  await files.syncDir();
  return { name, header: { ...header, base: { ...header.base } }, last: { ...header.base }, size: HEADER_BYTES, index: [] };
}

async function readFirstSeq(files: LogFiles): Promise<bigint | undefined> {
  if (!(await files.list()).includes(FIRST_SEQ_FILE)) return undefined;
  const b = Buffer.alloc(8);
  return (await files.read(FIRST_SEQ_FILE, b, 0, 8, 0)) === 8 ? b.readBigUInt64BE() : undefined;
}

async function writeFirstSeq(files: LogFiles, seq: bigint): Promise<void> {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(seq);
  await files.replace(FIRST_SEQ_FILE, b);
}
