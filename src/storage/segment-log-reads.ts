import { entryChecksum } from '../wire/entry-codec.js';
import { AppendSignal, logTrimmed } from './append-signal.js';
import type { LogBase } from './interfaces.js';
import type { LogFiles } from './log-files.js';
import { SegmentReader } from './segment-reader.js';
import type { Segment } from './segment-recovery.js';
import { TailCache } from './tail-cache.js';

/**
 * The read side of a segment log (SegmentLog is the write side): the published positions
 * and the reads of ReplicationLog, served from the in-memory tail when it holds the
 * entries and from the segment files otherwise.
 *
 * Invariant (kept by SegmentLog): firstSeq <= lastSeq + 1, and every seq in
 * [firstSeq, lastSeq] is in `segments`, chained from the one before.
 */
export abstract class SegmentLogReads {
  protected readonly tail = new TailCache();
  protected readonly signal = new AppendSignal();
  /** The log's segments, oldest first (shared with the reader; a reopen refills it in place). */
  protected readonly segments: Segment[] = [];
  protected readonly reader: SegmentReader;
  firstSeq = 1n;
  lastSeq = 0n;
  lastChecksum = 0;
  lastCommitTimeMs = 0;

  protected constructor(protected readonly files: LogFiles) {
    this.reader = new SegmentReader(files, this.segments);
  }

  /** The entry just before the first segment's first entry. */
  get physicalBase(): LogBase {
    return this.segments[0].header.base;
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
}
