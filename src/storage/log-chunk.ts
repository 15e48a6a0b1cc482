import { entrySizeForBody, writeEntryWithBody } from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { FieldTag } from '../wire/field-tags.js';
import { framedSize, readLengthEnd, writeVarint, type Cursor } from '../wire/protobuf-wire.js';
import type { PreparedWrites } from '../wire/prepared-writes.js';

/**
 * The master stores its log as chunks: LevelDB records of up to MAX_CHUNK_ENTRIES entries,
 * written in the same atomic batch as their group commit's data changes, each under the
 * key of its LAST seq (keys.ts logKey). A chunk holds encoded entries back to back, each framed
 * exactly as protobuf frames an element of `EntryBatch.entries` (field 1, length-delimited):
 *
 *   per entry: 0x0a, varint length, the encoded entry (entry-codec.ts)
 *
 * so a chunk is self-delimiting, and a run of entries from one chunk is already the wire
 * encoding of those entries (see subscribe-serializer.ts).
 *
 * Why chunks and not one record per entry: LevelDB's cost is per record (a memtable insert,
 * a put through the binding, compaction and trimming work per key). With a record per
 * entry the log doubled the records of every write and measured about 3x slower than the
 * data alone (batches of 1,000, no fsync); with one record per group it costs little more
 * than the bytes. Keyed by the last seq, the chunk holding seq s is the first key >= s.
 */
export const ENTRY_FIELD_TAG = FieldTag.EntryBatch.entries;

/**
 * Bounds of one chunk: a larger group commit is stored as several chunks (still in its one
 * batch), so reading any entry back reads at most about one stream message's worth.
 */
export const MAX_CHUNK_ENTRIES = 1_000;
export const MAX_CHUNK_BYTES = 1024 * 1024;

export interface EncodedChunks {
  /** The records to store, each under logKey(lastSeq). */
  chunks: { lastSeq: bigint; bytes: Buffer }[];
  /**
   * The entries (without framing), seqs firstSeq, firstSeq + 1, ...: entry i is
   * buf[starts[i], ends[i]). Offsets, not a view per entry: the committer reads them while
   * the group's fsync runs, and thousands of views per group outlived young collections.
   */
  buf: Buffer;
  starts: Uint32Array;
  ends: Uint32Array;
  lastChecksum: number;
}

/**
 * Encodes the entries of one group commit: one entry per write of the requests, in order,
 * seqs firstSeq, firstSeq + 1, ..., checksums chained from prevChecksum, framed into
 * chunks of at most MAX_CHUNK_ENTRIES entries and MAX_CHUNK_BYTES (or one larger entry).
 * The chunks are consecutive views of one buffer: scratch when the group fits in it (the
 * caller then owns the results only until it reuses scratch), else a new one.
 */
export function encodeChunks(firstSeq: bigint, commitTimeMs: number, requests: readonly PreparedWrites[], prevChecksum: number, scratch?: Buffer): EncodedChunks {
  let total = 0;
  let count = 0;
  for (const r of requests) {
    for (let i = 0; i < r.count; i++) total += framedSize(entrySizeForBody(r.ends[i] - r.startOf(i)));
    count += r.count;
  }
  const buf = scratch && total <= scratch.length ? scratch : Buffer.allocUnsafe(total);
  const starts = new Uint32Array(count);
  const ends = new Uint32Array(count);
  const chunks: EncodedChunks['chunks'] = [];
  let checksum = prevChecksum;
  let seq = firstSeq;
  let o = 0;
  let n = 0;
  let chunkStart = 0;
  let inChunk = 0;
  for (const r of requests) {
    for (let i = 0; i < r.count; i++) {
      const start = r.startOf(i);
      const size = entrySizeForBody(r.ends[i] - start);
      if (inChunk > 0 && (inChunk === MAX_CHUNK_ENTRIES || o - chunkStart + framedSize(size) > MAX_CHUNK_BYTES)) {
        chunks.push({ lastSeq: seq - 1n, bytes: buf.subarray(chunkStart, o) });
        chunkStart = o;
        inChunk = 0;
      }
      buf[o] = ENTRY_FIELD_TAG;
      o = writeVarint(buf, o + 1, size);
      checksum = writeEntryWithBody(buf, o, seq++, commitTimeMs, r.liveBody, start, r.ends[i], checksum);
      starts[n] = o;
      ends[n++] = o + size;
      o += size;
      inChunk++;
    }
  }
  if (inChunk > 0) chunks.push({ lastSeq: seq - 1n, bytes: buf.subarray(chunkStart, o) });
  return { chunks, buf, starts, ends, lastChecksum: checksum };
}

/** Builds a chunk from entries already encoded (a trimmed or truncated chunk is rewritten this way). */
export function chunkOf(entries: readonly Buffer[]): Buffer {
  let total = 0;
  for (const e of entries) total += framedSize(e.length);
  const chunk = Buffer.allocUnsafe(total);
  let o = 0;
  for (const e of entries) {
    chunk[o] = ENTRY_FIELD_TAG;
    o = writeVarint(chunk, o + 1, e.length);
    o += e.copy(chunk, o);
  }
  return chunk;
}

/**
 * The entries of a chunk, as views (no copies). Checks the framing only; each entry's own
 * structure and checksum are checked by whoever uses it (decodeEntry, chainsFrom).
 * A chunk whose framing is broken throws CORRUPT_ENTRY; `intact` then holds the entries
 * before the break.
 */
export function splitChunk(chunk: Buffer): Buffer[] {
  const entries: Buffer[] = [];
  const r: Cursor = { pos: 0 };
  while (r.pos < chunk.length) {
    if (chunk[r.pos] !== ENTRY_FIELD_TAG) throw new ChunkFramingError(entries, `unexpected byte ${chunk[r.pos]} where an entry should start`);
    r.pos++;
    const end = readLengthEnd(chunk, r);
    if (end < 0) throw new ChunkFramingError(entries, 'an entry length that is truncated or runs past the end of its chunk');
    entries.push(chunk.subarray(r.pos, end));
    r.pos = end;
  }
  if (entries.length === 0) throw new ChunkFramingError(entries, 'an empty log chunk');
  return entries;
}

export class ChunkFramingError extends ReplicatorError {
  constructor(
    /** The well-framed entries before the break. */
    readonly intact: Buffer[],
    why: string,
  ) {
    super(ErrorCode.CORRUPT_ENTRY, `corrupt log chunk: ${why}`);
  }
}
