import zlib from 'node:zlib';
import { ErrorCode, ReplicatorError } from './errors.js';

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

const HEADER_BYTES = 1 + 8 + 8 + 4;
const CHECKSUM_BYTES = 4;

export function encodedEntrySize(mutations: readonly Mutation[]): number {
  let size = HEADER_BYTES + CHECKSUM_BYTES;
  for (const m of mutations) {
    size += 1 + 4 + m.key.length;
    if (m.kind === MutationKind.PUT) size += 4 + (m.value?.length ?? 0);
  }
  return size;
}

/** Encodes one entry and seals it with the checksum chained from prevChecksum. */
export function encodeEntry(seq: bigint, commitTimeMs: number, mutations: readonly Mutation[], prevChecksum: number): Buffer {
  const buf = Buffer.allocUnsafe(encodedEntrySize(mutations));
  writeEntry(buf, 0, seq, commitTimeMs, mutations, prevChecksum);
  return buf;
}

const EMPTY = Buffer.alloc(0);
const TWO_32 = 2 ** 32;

/**
 * Writes one encoded entry at buf[offset], taking encodedEntrySize(mutations) bytes, and
 * returns its checksum (chained from prevChecksum). For encoders that place many entries
 * in one buffer (the master's log chunks); the bytes are exactly encodeEntry's.
 */
export function writeEntry(buf: Buffer, offset: number, seq: bigint, commitTimeMs: number, mutations: readonly Mutation[], prevChecksum: number): number {
  let o = offset;
  buf[o] = ENTRY_FORMAT_VERSION;
  buf.writeBigUInt64BE(seq, o + 1);
  buf.writeUInt32BE(Math.floor(commitTimeMs / TWO_32), o + 9);
  buf.writeUInt32BE(commitTimeMs >>> 0, o + 13);
  buf.writeUInt32BE(mutations.length, o + 17);
  o += HEADER_BYTES;
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
  const checksum = zlib.crc32(buf.subarray(offset, o), prevChecksum);
  buf.writeUInt32BE(checksum, o);
  return checksum;
}

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
  const end = buf.length - CHECKSUM_BYTES;
  if (end < HEADER_BYTES) throw corrupt(`only ${buf.length} bytes`);
  const version = buf.readUInt8(0);
  if (version !== ENTRY_FORMAT_VERSION) throw corrupt(`unknown format version ${version}`);
  const seq = buf.readBigUInt64BE(1);
  const commitTimeMs = Number(buf.readBigUInt64BE(9));
  const count = buf.readUInt32BE(17);
  // Each mutation takes at least 5 bytes: refuse absurd counts before allocating.
  if (count * 5 > end - HEADER_BYTES) throw corrupt(`mutation count ${count} does not fit in ${buf.length} bytes`);
  const mutations: Mutation[] = new Array(count);
  let o = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (o + 5 > end) throw corrupt('truncated mutation header');
    const kind = buf.readUInt8(o);
    const keyLen = buf.readUInt32BE(o + 1);
    o += 5;
    if (kind !== MutationKind.PUT && kind !== MutationKind.DELETE) throw corrupt(`unknown mutation kind ${kind}`);
    if (o + keyLen > end) throw corrupt('key runs past the end');
    const key = buf.subarray(o, o + keyLen);
    o += keyLen;
    if (kind === MutationKind.PUT) {
      if (o + 4 > end) throw corrupt('truncated value length');
      const valueLen = buf.readUInt32BE(o);
      o += 4;
      if (o + valueLen > end) throw corrupt('value runs past the end');
      mutations[i] = { kind, key, value: buf.subarray(o, o + valueLen) };
      o += valueLen;
    } else {
      mutations[i] = { kind, key };
    }
  }
  if (o !== end) throw corrupt(`${end - o} unexpected bytes after the mutations`);
  return { seq, commitTimeMs, mutations, checksum: buf.readUInt32BE(end) };
}
