import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { entrySeq } from '../wire/entry-codec.js';
import { readLengthEnd, type Cursor } from '../wire/protobuf-wire.js';
import { logTrimmed } from './append-signal.js';
import type { LogFiles } from './log-files.js';
import { ENTRY_FIELD_TAG } from './log-chunk.js';
import { HEADER_BYTES, INDEX_STRIDE } from './segment-format.js';
import type { Segment } from './segment-recovery.js';

/** Bytes read from a segment at a time (more when one message's worth asks for more). */
const BLOCK_BYTES = 256 * 1024;

/** A block of one segment read last: its records' entries, in seq order from `first`. */
interface Block {
  segment: string;
  first: bigint;
  entries: Buffer[];
  /** File offset just past the last whole record in the block. */
  end: number;
}

/**
 * Reads entries back from segment files, for followers behind the in-memory tail. A read
 * seeks with the segment's sparse index (at most INDEX_STRIDE records to skip) and reads
 * blocks; the block read last is kept, because consecutive messages of one stream, and
 * followers at about the same place, read on from where the last read ended.
 */
export class SegmentReader {
  private recent: Block | undefined;

  constructor(
    private readonly files: LogFiles,
    /** The log's segments (shared with SegmentLog, oldest first). */
    private readonly segments: Segment[],
  ) {}

  forget(): void {
    this.recent = undefined;
  }

  dropSegment(name: string): void {
    if (this.recent?.segment === name) this.recent = undefined;
  }

  /** Consecutive entries from fromSeq (not past lastSeq), within the limits; at least one. */
  async read(fromSeq: bigint, lastSeq: bigint, maxEntries: number, maxBytes: number): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let bytes = 0;
    let seq = fromSeq;
    /** Takes entries from a block starting at seq; false once a limit is reached. */
    const take = (b: Block): boolean => {
      for (let i = Number(seq - b.first); i < b.entries.length; i++) {
        const e = b.entries[i];
        if (out.length >= maxEntries || seq > lastSeq || (out.length > 0 && bytes + e.length > maxBytes)) return false;
        if (entrySeq(e) !== seq) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log segment ${b.segment} holds seq ${entrySeq(e)} where seq ${seq} belongs`);
        out.push(e);
        bytes += e.length;
        seq++;
      }
      return true;
    };
    while (out.length < maxEntries && seq <= lastSeq) {
      const r = this.recent;
      let block: Block;
      if (r && seq >= r.first && seq < r.first + BigInt(r.entries.length)) block = r;
      else block = await this.readBlock(seq, out.length === 0 ? maxBytes : maxBytes - bytes);
      this.recent = block;
      if (!take(block)) break;
    }
    return out;
  }

  /** About how many bytes of segments hold seq and everything after it. */
  bytesFrom(seq: bigint): number {
    let total = 0;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i];
      if (s.header.base.seq < seq) {
        const k = Math.floor(Number(seq - s.header.base.seq - 1n) / INDEX_STRIDE);
        const at = k < s.index.length ? s.index[k] : s.size;
        return total + (s.size - at);
      }
      total += s.size - HEADER_BYTES;
    }
    return total;
  }

  /** Reads a block of the segment holding seq that holds seq's record (and what follows it). */
  private async readBlock(seq: bigint, wantBytes: number): Promise<Block> {
    const seg = this.segmentOf(seq);
    const first0 = seg.header.base.seq + 1n;
    const k = Math.floor(Number(seq - first0) / INDEX_STRIDE);
    if (k >= seg.index.length) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log segment ${seg.name} has no record for seq ${seq}`);
    let offset = seg.index[k];
    let first = first0 + BigInt(k * INDEX_STRIDE);
    let want = Math.max(BLOCK_BYTES, wantBytes + 64 * 1024);
    for (;;) {
      if (offset >= seg.size) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log segment ${seg.name} ends before seq ${seq}`);
      const block = await this.readAt(seg, offset, first, Math.min(seg.size - offset, want));
      const n = BigInt(block.entries.length);
      if (n === 0n) {
        want = seg.size - offset; // one record larger than the block: read on to the segment's end
        continue;
      }
      if (seq < block.first + n) return block;
      offset = block.end;
      first = block.first + n;
    }
  }

  /** The whole records in length bytes of seg at offset, whose first is seq first. */
  private async readAt(seg: Segment, offset: number, first: bigint, length: number): Promise<Block> {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = await this.files.read(seg.name, buf, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    const entries: Buffer[] = [];
    const c: Cursor = { pos: 0 };
    while (c.pos < got) {
      const at = c.pos;
      if (buf[c.pos] !== ENTRY_FIELD_TAG) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log segment ${seg.name}: no record at offset ${offset + at}`);
      c.pos++;
      const end = readLengthEnd(buf, c, got);
      if (end < 0) {
        c.pos = at;
        break; // the record runs past this block: the next block starts with it
      }
      entries.push(buf.subarray(c.pos, end));
      c.pos = end;
    }
    return { segment: seg.name, first, entries, end: offset + c.pos };
  }

  private segmentOf(seq: bigint): Segment {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segs[mid].header.base.seq < seq) lo = mid;
      else hi = mid - 1;
    }
    const s = segs[lo];
    if (!s || s.header.base.seq >= seq) throw logTrimmed(seq, segs[0] ? segs[0].header.base.seq + 1n : seq);
    return s;
  }
}
