import zlib from 'node:zlib';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { chainsFrom, decodeEntry, entryChecksum, entryCommitTimeMs, entrySeq } from '../wire/entry-codec.js';
import { framedSize, readLengthEnd, writeVarint, type Cursor } from '../wire/protobuf-wire.js';
import type { LogBase } from './interfaces.js';
import { ENTRY_FIELD_TAG } from './log-chunk.js';

/**
 * The on-disk format of one log segment file:
 *
 *   header (HEADER_BYTES): magic "LRWALSEG", u32 format version, u32 epoch, 16-byte history
 *     id, the base (u64 seq, u32 checksum, u64 commit time: the entry just before this
 *     segment's first), 8 reserved bytes, u32 crc32 of everything before it
 *   records, back to back: 0x0a, varint length, the encoded entry (entry-codec.ts)
 *
 * A record is framed exactly as protobuf frames an element of `EntryBatch.entries`, so a
 * run of records is already the wire encoding of those entries, and each entry ends with
 * the chained checksum (crc32 seeded with the previous entry's): a record is verified by
 * its length framing and by chaining from the one before, the first from the header's base.
 * The file is named after its first seq (20 decimal digits, so names sort by seq).
 */
export const SEGMENT_MAGIC = Buffer.from('LRWALSEG', 'ascii');
export const SEGMENT_FORMAT_VERSION = 1;
export const HEADER_BYTES = 64;
export const SEGMENT_SUFFIX = '.seg';
/** Every this many entries a segment's index remembers a record's offset (reads scan at most this many). */
export const INDEX_STRIDE = 64;

export interface SegmentHeader {
  epoch: number;
  historyId: Buffer;
  base: LogBase;
}

export function segmentName(firstSeq: bigint): string {
  return `${firstSeq.toString().padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** The first seq a segment file name stands for, or undefined for any other file. */
export function firstSeqOfName(name: string): bigint | undefined {
  const m = /^(\d{20})\.seg$/.exec(name);
  return m ? BigInt(m[1]) : undefined;
}

export function encodeHeader(h: SegmentHeader): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32BE(SEGMENT_FORMAT_VERSION, 8);
  b.writeUInt32BE(h.epoch >>> 0, 12);
  h.historyId.copy(b, 16, 0, 16);
  b.writeBigUInt64BE(h.base.seq, 32);
  b.writeUInt32BE(h.base.checksum >>> 0, 40);
  b.writeBigUInt64BE(BigInt(h.base.commitTimeMs), 44);
  b.writeUInt32BE(zlib.crc32(b.subarray(0, HEADER_BYTES - 4)), HEADER_BYTES - 4);
  return b;
}

/** The header, or a reason why these bytes are not one. */
export function decodeHeader(b: Buffer): SegmentHeader | string {
  if (b.length < HEADER_BYTES) return `the segment is ${b.length} bytes, shorter than its header`;
  if (!b.subarray(0, 8).equals(SEGMENT_MAGIC)) return 'the segment does not start with the segment magic';
  if (b.readUInt32BE(HEADER_BYTES - 4) !== zlib.crc32(b.subarray(0, HEADER_BYTES - 4))) return "the segment header's checksum does not match";
  const version = b.readUInt32BE(8);
  if (version !== SEGMENT_FORMAT_VERSION) return `unknown segment format version ${version}`;
  return {
    epoch: b.readUInt32BE(12),
    historyId: Buffer.from(b.subarray(16, 32)),
    base: { seq: b.readBigUInt64BE(32), checksum: b.readUInt32BE(40), commitTimeMs: Number(b.readBigUInt64BE(44)) },
  };
}

/** What scanning a segment's records found. */
export interface SegmentScan {
  /** Seq, checksum and commit time of the last good record (the base when there is none). */
  last: LogBase;
  /** Bytes of the file that hold the header and good records. */
  goodBytes: number;
  /** File offsets of the records of seqs base.seq + 1 + k * INDEX_STRIDE. */
  index: number[];
  /**
   * The first bad record, if any: where, why, and whether good, chained records follow
   * it (then it is damage inside the log; else it is a torn end, an unfinished append).
   */
  bad?: { seq: bigint; offset: number; reason: string; recordsAfter: boolean };
}

/**
 * Verifies the records of a segment (the whole file in `file`) in order: each well framed,
 * well formed, the next seq, chaining from the previous checksum. Stops at the first bad one.
 */
export function scanSegment(file: Buffer, header: SegmentHeader): SegmentScan {
  let last: LogBase = { ...header.base };
  const index: number[] = [];
  const r: Cursor = { pos: HEADER_BYTES };
  let n = 0;
  while (r.pos < file.length) {
    const start = r.pos;
    const bad = (reason: string): SegmentScan => ({
      last,
      goodBytes: start,
      index,
      bad: { seq: last.seq + 1n, offset: start, reason, recordsAfter: chainedRecordFollows(file, start) },
    });
    if (file[r.pos] !== ENTRY_FIELD_TAG) return bad(`unexpected byte ${file[r.pos]} where a record should start`);
    r.pos++;
    const end = readLengthEnd(file, r);
    if (end < 0) return bad('a record length that runs past the end of the segment');
    const entry = file.subarray(r.pos, end);
    const why = entryProblem(entry, last);
    if (why) return bad(why);
    if (n % INDEX_STRIDE === 0) index.push(start);
    n++;
    last = { seq: last.seq + 1n, checksum: entryChecksum(entry), commitTimeMs: entryCommitTimeMs(entry) };
    r.pos = end;
  }
  return { last, goodBytes: r.pos, index };
}

/** Why entry cannot follow `prev`, or undefined when it does. */
function entryProblem(entry: Buffer, prev: LogBase): string | undefined {
  try {
    decodeEntry(entry);
    const seq = entrySeq(entry);
    if (seq !== prev.seq + 1n) return `the log jumps from seq ${prev.seq} to seq ${seq}`;
    if (!chainsFrom(entry, prev.checksum)) return 'its checksum does not match its bytes and the previous entry';
    return undefined;
  } catch (err) {
    if (isReplicatorError(err, ErrorCode.CORRUPT_ENTRY)) return err.message;
    throw err;
  }
}

/**
 * Whether, past a bad record at `from`, a well-framed record follows it that chains from
 * the bad record's stored checksum: then the bad record is damage inside the log (a later
 * record was written after it), not the torn end of an append that never finished.
 */
function chainedRecordFollows(file: Buffer, from: number): boolean {
  const r: Cursor = { pos: from };
  if (file[r.pos] !== ENTRY_FIELD_TAG) return false;
  r.pos++;
  const end = readLengthEnd(file, r);
  if (end < 0 || end - r.pos < 4) return false;
  const badChecksum = file.readUInt32BE(end - 4);
  r.pos = end;
  if (r.pos >= file.length || file[r.pos] !== ENTRY_FIELD_TAG) return false;
  r.pos++;
  const nextEnd = readLengthEnd(file, r);
  if (nextEnd < 0) return false;
  const next = file.subarray(r.pos, nextEnd);
  try {
    return next.length > 4 && chainsFrom(next, badChecksum);
  } catch {
    return false;
  }
}

/** A CORRUPT_ENTRY naming the bad entry and how far the log is intact. */
export function corruptLog(seq: bigint, reason: string, intactTo: bigint): ReplicatorError {
  return new ReplicatorError(
    ErrorCode.CORRUPT_ENTRY,
    `log entry ${seq} is corrupt (${reason}); the log is intact up to seq ${intactTo}. ` +
      'Refusing to serve past it; start with --repair-log to drop the log from that entry and start a new history',
  );
}

/** Frames entries as back-to-back records; ends[i] is where entry i's record ends. */
export function frameRecords(entries: readonly Buffer[]): { records: Buffer; ends: Uint32Array } {
  let total = 0;
  for (const e of entries) total += framedSize(e.length);
  const records = Buffer.allocUnsafe(total);
  const ends = new Uint32Array(entries.length);
  let o = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    records[o] = ENTRY_FIELD_TAG;
    o = writeVarint(records, o + 1, e.length);
    o += e.copy(records, o);
    ends[i] = o;
  }
  return { records, ends };
}
