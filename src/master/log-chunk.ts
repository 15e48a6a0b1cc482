import { encodedEntrySize, entrySeq, writeEntry, type Mutation } from '../common/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * The master stores its log as chunks: one LevelDB record per group commit, written in the
 * same atomic batch as the group's data changes, under the key of the group's LAST seq
 * (keys.ts logKey). A chunk holds the group's encoded entries back to back, each framed
 * exactly as protobuf frames an element of `EntryBatch.entries` (field 1, length-delimited):
 *
 *   per entry: 0x0a, varint length, the encoded entry (entry-codec.ts)
 *
 * so a chunk is self-delimiting, and a run of entries from one chunk is already the wire
 * encoding of those entries (see entry-batch-serializer.ts).
 *
 * Why chunks and not one record per entry: LevelDB's cost is per record (a memtable insert,
 * a put through the binding, compaction and trimming work per key). With a record per
 * entry the log doubled the records of every write and measured about 3x slower than the
 * data alone (batches of 1,000, no fsync); with one record per group it costs little more
 * than the bytes. Keyed by the last seq, the chunk holding seq s is the first key >= s.
 */
export const ENTRY_FIELD_TAG = 0x0a;

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes n (a non-negative safe integer) as a protobuf varint at o; returns the offset after it. */
export function writeVarint(buf: Buffer, o: number, n: number): number {
  while (n >= 0x80) {
    buf[o++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[o++] = n;
  return o;
}

/** Bytes an entry of this length takes in a chunk, framing included. */
export function framedSize(entryLength: number): number {
  return 1 + varintSize(entryLength) + entryLength;
}

export interface EncodedChunk {
  /** The record stored under logKey(last seq). */
  chunk: Buffer;
  /** One view into chunk per entry (without framing), seqs firstSeq, firstSeq + 1, ... */
  entries: Buffer[];
  lastChecksum: number;
}

/**
 * Encodes the entries of one group commit (seqs firstSeq, firstSeq + 1, ..., one per element
 * of writes, checksums chained from prevChecksum) into one chunk: one allocation per group.
 */
export function encodeChunk(firstSeq: bigint, commitTimeMs: number, writes: readonly (readonly Mutation[])[], prevChecksum: number): EncodedChunk {
  const sizes = new Array<number>(writes.length);
  let total = 0;
  for (let i = 0; i < writes.length; i++) {
    sizes[i] = encodedEntrySize(writes[i]);
    total += framedSize(sizes[i]);
  }
  const chunk = Buffer.allocUnsafe(total);
  const entries = new Array<Buffer>(writes.length);
  let checksum = prevChecksum;
  let seq = firstSeq;
  let o = 0;
  for (let i = 0; i < writes.length; i++) {
    chunk[o] = ENTRY_FIELD_TAG;
    o = writeVarint(chunk, o + 1, sizes[i]);
    checksum = writeEntry(chunk, o, seq++, commitTimeMs, writes[i], checksum);
    entries[i] = chunk.subarray(o, o + sizes[i]);
    o += sizes[i];
  }
  return { chunk, entries, lastChecksum: checksum };
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
  let o = 0;
  while (o < chunk.length) {
    if (chunk[o] !== ENTRY_FIELD_TAG) throw new ChunkFramingError(entries, `unexpected byte ${chunk[o]} where an entry should start`);
    let len = 0;
    let shift = 0;
    let p = o + 1;
    for (;;) {
      if (p >= chunk.length || shift > 28) throw new ChunkFramingError(entries, 'a truncated entry length');
      const b = chunk[p++];
      len += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) break;
    }
    if (p + len > chunk.length) throw new ChunkFramingError(entries, `an entry of ${len} bytes runs past the end of its chunk`);
    entries.push(chunk.subarray(p, p + len));
    o = p + len;
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

/** The seq of a chunk's first entry. */
export function firstSeqOfChunk(entries: readonly Buffer[]): bigint {
  return entrySeq(entries[0]);
}
