import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { EpochHistory } from './epoch-history.js';
import type { EpochLog, LogBase, SlotRecord } from './interfaces.js';
import { LogEpochs } from './log-epochs.js';
import type { LogFiles } from './log-files.js';
import { FIRST_SEQ_FILE, writeEpochs, writeFirstSeq } from './log-markers.js';
import { encodeHeader, HEADER_BYTES, INDEX_STRIDE } from './segment-format.js';
import { createSegment, HISTORY_ID_BYTES, openSegments, type OpenedLog, type OpenLogOptions } from './segment-log-open.js';
import { SegmentLogReads } from './segment-log-reads.js';
import type { Segment } from './segment-recovery.js';

/** The history id of a log without a segment (only inside reset()): no history, as a replica's before its first entry. */
const NO_SEGMENT_HISTORY = Buffer.alloc(HISTORY_ID_BYTES);

export { HISTORY_ID_BYTES } from './segment-log-open.js';
/** A segment is closed and a new one started once the next group would take it past this size. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

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
 * segments below it. Its history id is its newest segment's; its epoch history is the
 * `epochs` file (log-markers.ts), replaced durably by beginEpoch and adoptEpochs.
 *
 * Invariant: firstSeq <= lastSeq + 1, lastSeq <= written.seq, and every seq in
 * [firstSeq, lastSeq] is in a segment, chained from the one before. A segment's header
 * epoch is the log's epoch when the segment was created; the first entry of an epoch
 * begun here (beginEpoch) starts a segment whose header names that epoch.
 */
export class SegmentLog extends SegmentLogReads implements EpochLog {
  /** The newest entry written (durable once synced), published or not. */
  private written!: LogBase;
  private failure: ReplicatorError | undefined;
  /** Appends since the active segment's last sync (written without sync). */
  private unsynced = false;
  private readonly history: LogEpochs;
  trimHook: TrimHook | undefined;
  /**
   * The highest first seq a trim may move to (set by a store that publishes entries before
   * its own write of them: the store's seq + 1), so no segment holding an entry the store
   * lacks is deleted. Unset: lastSeq is the limit.
   */
  trimLimit: bigint | undefined;

  private constructor(
    files: LogFiles,
    opened: OpenedLog,
    private readonly maxSegmentBytes: number,
  ) {
    super(files);
    this.history = new LogEpochs(opened.history, (h) => writeEpochs(files, h));
    this.load(opened);
  }

  /** Takes a freshly opened directory's state (at open, or at a reopen). */
  private load(opened: OpenedLog): void {
    this.segments.splice(0, this.segments.length, ...opened.segments);
    this.history.reset(opened.history);
    const last = opened.segments[opened.segments.length - 1].last;
    this.written = { ...last };
    this.firstSeq = opened.firstSeq;
    this.lastSeq = last.seq;
    this.lastChecksum = last.checksum;
    this.lastCommitTimeMs = last.commitTimeMs;
    this.tail.clear();
    this.reader.forget();
    this.failure = undefined;
    this.unsynced = false;
  }

  /**
   * The history of the active segment. Inside reset() there is none for a moment (the old
   * segments are gone, the new one is being created) while readers go on (a follower's
   * health loop, a chained subscriber): they see no history then, as before a first one.
   */
  get historyId(): Buffer {
    return this.active?.header.historyId ?? NO_SEGMENT_HISTORY;
  }

  /** The newest epoch of the history (a copy of it is in the header of segments created since it began). */
  get epoch(): number {
    return this.history.epoch;
  }

  get epochs(): EpochHistory {
    return this.history.history;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1];
  }

  /**
   * Opens the log in `files`, verifying it whole (see openSegments). An empty directory
   * gets a first segment: `init` when given, else a new history at seq 0. With repairLog a
   * damaged log is cut at the bad entry and continues under a new history.
   */
  static async open(files: LogFiles, opts: SegmentLogOptions & OpenLogOptions = {}): Promise<SegmentLog & { repaired?: { seq: bigint; reason: string } }> {
    const opened = await openSegments(files, opts);
    const log = new SegmentLog(files, opened, opts.maxSegmentBytes ?? DEFAULT_SEGMENT_BYTES) as SegmentLog & { repaired?: { seq: bigint; reason: string } };
    if (opened.repaired) log.repaired = opened.repaired;
    return log;
  }

  /**
   * Closes the files and opens the directory again in this same object (after a failed
   * append: recovery cuts whatever part of it tore), so whoever holds the log keeps a live
   * one. Readers see the reopened log's positions; the tail cache starts empty.
   */
  async reopen(opts: Omit<OpenLogOptions, 'repairLog'> = {}): Promise<void> {
    await this.files.close();
    this.load(await openSegments(this.files, opts));
    this.wake();
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
      // The first entry of the newest epoch starts a segment of that epoch (beginEpoch
      // does it at once; this covers a crash between its history write and its roll).
      if (this.active.header.epoch < this.epoch && this.epochs[this.epochs.length - 1].firstSeq === this.written.seq + 1n) await this.startEpochSegment();
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

  /**
   * Begins `epoch` at firstSeq, which must be the next seq to be written (a promotion: the
   * new master's first entry), for an epoch above the log's. The history is written
   * durably first (the commit point: resolved means it survives a power loss, interrupted
   * means the old one stays), then the active segment gives way to one whose header names
   * the new epoch. Not concurrently with append (the single writer calls both).
   */
  async beginEpoch(epoch: number, firstSeq: bigint): Promise<void> {
    if (this.failure) throw this.failure;
    await this.history.begin(epoch, firstSeq, this.written.seq + 1n);
    try {
      await this.startEpochSegment();
    } catch (err) {
      this.failure = new ReplicatorError(ErrorCode.STORE_FAILED, `began epoch ${epoch}, but cannot start its segment: ${(err as Error).message}`, { cause: err });
      throw this.failure;
    }
  }

  /**
   * Replaces the epoch history with an upstream's (a follower, at each stream start, before
   * it applies anything of the stream), durably; see LogEpochs.adopt.
   */
  adoptEpochs(history: EpochHistory): Promise<void> {
    return this.history.adopt(history);
  }

  /** Closes the active segment and starts the next one (its header synced, its name durable). */
  private async roll(): Promise<Segment> {
    await this.syncAll();
    const seg = await createSegment(this.files, { historyId: this.historyId, epoch: this.epoch, base: this.written });
    this.segments.push(seg);
    return seg;
  }

  /**
   * Makes the active segment one whose header names the log's epoch: a new one after it,
   * or, when it holds no record (a new one would take its name), its header replaced
   * atomically in place, so that no crash can leave the log without a segment.
   */
  private async startEpochSegment(): Promise<void> {
    const seg = this.active;
    if (seg.header.epoch === this.epoch) return;
    if (seg.size > HEADER_BYTES) {
      await this.roll();
      return;
    }
    const header = { ...seg.header, epoch: this.epoch };
    await this.files.replace(seg.name, encodeHeader(header));
    seg.header = header;
  }

  /**
   * Replaces the whole log by an empty one at `base` (a replica that installed a snapshot,
   * or whose store is ahead of its log; a repaired master). The old segments go first, then
   * the new one is created durably: a crash between leaves no segment, and the next open
   * then starts the log at the store's position (a replica) or refuses a store ahead of an
   * empty log until --repair-log (a master) — never a log that disagrees with its store.
   * The epoch history stays (a snapshot or a repair begins no epoch); the new segment's
   * header names the log's epoch.
   */
  async reset(base: LogBase, historyId: Buffer): Promise<void> {
    const old = this.segments.splice(0);
    for (const s of old) await this.files.remove(s.name);
    await this.files.remove(FIRST_SEQ_FILE);
    this.segments.push(await createSegment(this.files, { historyId, epoch: this.epoch, base }));
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
