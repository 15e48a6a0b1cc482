import zlib from 'node:zlib';
import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * Log entry format (version 1), big-endian, one entry per seq:
 *
 *   u8   format version (1)
 *   u64  seq
 *   u64  commit time, ms since the epoch (master clock)
 *   u32  mutation count
 *   per mutation: u8 kind (0 put, 1 delete), u32 key length, key,
 *                 and for puts: u32 value length, value
 *   u32  checksum = crc32(every byte above, seeded with the previous entry's checksum)
 *
 * The checksum chains: it covers this entry and, through its seed, the whole history
 * before it. Two logs that agree on (seq, checksum) agree on every entry up to seq with
 * overwhelming probability; a flipped or torn byte fails verification.
 * The master stores these bytes once and streams them unchanged to every follower.
 */
export const ENTRY_FORMAT_VERSION = 1;
export const GENESIS_CHECKSUM = 0;

export const MutationKind = { PUT: 0, DELETE: 1 } as const;
export type MutationKind = (typeof MutationKind)[keyof typeof MutationKind];

export interface Mutation {
  kind: MutationKind;
  key: Buffer;
  value?: Buffer; // present for PUT
}

export interface DecodedEntry {
  seq: bigint;
  commitTimeMs: number;
  mutations: Mutation[];
  checksum: number;
}

/** Version, seq and commit time: what comes before the body. */
const PREFIX_BYTES = 1 + 8 + 8;
const HEADER_BYTES = PREFIX_BYTES + 4;
const CHECKSUM_BYTES = 4;

/**
 * An entry's *body* is its mutation count and mutations, exactly as laid out above. The
 * master packs each request's writes into bodies when it validates them (see
 * src/wire/prepared-writes.ts) and seals them into entries at commit.
 */
export function encodedBodySize(mutations: readonly Mutation[]): number {
  let size = 4;
  for (const m of mutations) {
    size += 1 + 4 + m.key.length;
    if (m.kind === MutationKind.PUT) size += 4 + (m.value?.length ?? 0);
  }
  return size;
}

export function encodedEntrySize(mutations: readonly Mutation[]): number {
  return PREFIX_BYTES + encodedBodySize(mutations) + CHECKSUM_BYTES;
}

/** Bytes of an entry whose body has this many bytes. */
export function entrySizeForBody(bodyBytes: number): number {
  return PREFIX_BYTES + bodyBytes + CHECKSUM_BYTES;
}

/** Encodes one entry and seals it with the checksum chained from prevChecksum. */
export function encodeEntry(seq: bigint, commitTimeMs: number, mutations: readonly Mutation[], prevChecksum: number): Buffer {
  const buf = Buffer.allocUnsafe(encodedEntrySize(mutations));
  writeEntry(buf, 0, seq, commitTimeMs, mutations, prevChecksum);
  return buf;
}

const EMPTY = Buffer.alloc(0);
const TWO_32 = 2 ** 32;

/** Writes a body (mutation count and mutations) at buf[o]; returns the offset after it. */
export function writeBody(buf: Buffer, o: number, mutations: readonly Mutation[]): number {
  buf.writeUInt32BE(mutations.length, o);
  o += 4;
  for (const m of mutations) {
    buf[o] = m.kind;
    buf.writeUInt32BE(m.key.length, o + 1);
    buf.set(m.key, o + 5);
    o += 5 + m.key.length;
    if (m.kind === MutationKind.PUT) {
      const value = m.value ?? EMPTY;
      buf.writeUInt32BE(value.length, o);
      buf.set(value, o + 4);
      o += 4 + value.length;
    }
  }
  return o;
}

function writePrefix(buf: Buffer, o: number, seq: bigint, commitTimeMs: number): void {
  buf[o] = ENTRY_FORMAT_VERSION;
  buf.writeBigUInt64BE(seq, o + 1);
  buf.writeUInt32BE(Math.floor(commitTimeMs / TWO_32), o + 9);
  buf.writeUInt32BE(commitTimeMs >>> 0, o + 13);
}

/** Seals the entry in buf[start, end) with its checksum (written at end); returns the checksum. */
function seal(buf: Buffer, start: number, end: number, prevChecksum: number): number {
  const checksum = zlib.crc32(buf.subarray(start, end), prevChecksum);
  buf.writeUInt32BE(checksum, end);
  return checksum;
}

/**
 * Writes one encoded entry at buf[offset], taking encodedEntrySize(mutations) bytes, and
 * returns its checksum (chained from prevChecksum).
 */
function writeEntry(buf: Buffer, offset: number, seq: bigint, commitTimeMs: number, mutations: readonly Mutation[], prevChecksum: number): number {
  writePrefix(buf, offset, seq, commitTimeMs);
  return seal(buf, offset, writeBody(buf, offset + PREFIX_BYTES, mutations), prevChecksum);
}

/**
 * Writes one encoded entry at buf[offset] from a body already encoded in body[start, end)
 * (entrySizeForBody(end - start) bytes); returns its checksum. The master's commit path.
 */
export function writeEntryWithBody(buf: Buffer, offset: number, seq: bigint, commitTimeMs: number, body: Buffer, start: number, end: number, prevChecksum: number): number {
  writePrefix(buf, offset, seq, commitTimeMs);
  buf.set(body.subarray(start, end), offset + PREFIX_BYTES);
  return seal(buf, offset, offset + PREFIX_BYTES + end - start, prevChecksum);
}

/**
 * Walks the body in buf[start, end), refusing anything malformed (lengths that run past
 * the end, trailing bytes, unknown kinds), and calls visit for each mutation with the
 * offsets of its key and value in buf (valueStart is -1 for a delete). No allocation.
 */
export function forEachMutation(
  buf: Buffer,
  start: number,
  end: number,
  visit: (kind: MutationKind, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => void,
): number {
  if (start + 4 > end) throw corrupt('truncated mutation count');
  const count = buf.readUInt32BE(start);
  // Each mutation takes at least 5 bytes: refuse absurd counts before doing anything.
  if (count * 5 > end - start - 4) throw corrupt(`mutation count ${count} does not fit in ${end - start} bytes`);
  let o = start + 4;
  for (let i = 0; i < count; i++) {
    if (o + 5 > end) throw corrupt('truncated mutation header');
    const kind = buf[o];
    const keyLen = buf.readUInt32BE(o + 1);
    o += 5;
    if (kind !== MutationKind.PUT && kind !== MutationKind.DELETE) throw corrupt(`unknown mutation kind ${kind}`);
    if (o + keyLen > end) throw corrupt('key runs past the end');
    const keyStart = o;
    o += keyLen;
    if (kind === MutationKind.PUT) {
      if (o + 4 > end) throw corrupt('truncated value length');
      const valueLen = buf.readUInt32BE(o);
      o += 4;
      if (o + valueLen > end) throw corrupt('value runs past the end');
      visit(kind, keyStart, keyStart + keyLen, o, o + valueLen);
      o += valueLen;
    } else {
      visit(kind, keyStart, keyStart + keyLen, -1, -1);
    }
  }
  if (o !== end) throw corrupt(`${end - o} unexpected bytes after the mutations`);
  return count;
}

/** Where an entry's body starts inside the entry. */
export const ENTRY_BODY_OFFSET = PREFIX_BYTES;

function corrupt(why: string): ReplicatorError {
  return new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `corrupt log entry: ${why}`);
}

/** The stored checksum of an encoded entry (its last four bytes), without decoding it. */
export function entryChecksum(buf: Buffer): number {
  if (buf.length < HEADER_BYTES + CHECKSUM_BYTES) throw corrupt(`only ${buf.length} bytes`);
  return buf.readUInt32BE(buf.length - CHECKSUM_BYTES);
}

/** The seq of an encoded entry, without decoding the rest. */
export function entrySeq(buf: Buffer): bigint {
  if (buf.length < HEADER_BYTES + CHECKSUM_BYTES) throw corrupt(`only ${buf.length} bytes`);
  return buf.readBigUInt64BE(1);
}

/** The master commit time (ms) of an encoded entry, without decoding the rest. */
export function entryCommitTimeMs(buf: Buffer): number {
  if (buf.length < HEADER_BYTES + CHECKSUM_BYTES) throw corrupt(`only ${buf.length} bytes`);
  return Number(buf.readBigUInt64BE(9));
}

/** True when the entry's bytes hash, seeded with prevChecksum, to its stored checksum. */
export function chainsFrom(buf: Buffer, prevChecksum: number): boolean {
  return zlib.crc32(buf.subarray(0, buf.length - CHECKSUM_BYTES), prevChecksum) === entryChecksum(buf);
}

/**
 * Decodes an entry, refusing anything malformed: wrong version, lengths that run past the
 * end, trailing bytes, unknown kinds. Keys and values are views into buf (no copies).
 * This checks structure only; continuity is checked with chainsFrom().
 */
export function decodeEntry(buf: Buffer): DecodedEntry {
  const end = entryBodyEnd(buf);
  const mutations: Mutation[] = [];
  forEachMutation(buf, PREFIX_BYTES, end, (kind, keyStart, keyEnd, valueStart, valueEnd) => {
    const key = buf.subarray(keyStart, keyEnd);
    mutations.push(kind === MutationKind.PUT ? { kind, key, value: buf.subarray(valueStart, valueEnd) } : { kind, key });
  });
  return { seq: buf.readBigUInt64BE(1), commitTimeMs: Number(buf.readBigUInt64BE(9)), mutations, checksum: buf.readUInt32BE(end) };
}

/** Checks an entry's length and format version; returns where its body ends (its checksum starts). */
export function entryBodyEnd(buf: Buffer): number {
  if (buf.length < HEADER_BYTES + CHECKSUM_BYTES) throw corrupt(`only ${buf.length} bytes`);
  if (buf[0] !== ENTRY_FORMAT_VERSION) throw corrupt(`unknown format version ${buf[0]}`);
  return buf.length - CHECKSUM_BYTES;
}
