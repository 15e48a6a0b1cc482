/**
 * The few pieces of the protobuf wire format the hand-written fast paths need (log chunks,
 * Write request decoding, entry batch and snapshot chunk encoding and decoding). Everything
 * else goes through proto-loader.
 */

/** Bytes of n (a non-negative safe integer) as a varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes n (a non-negative safe integer) as a varint at o; returns the offset after it. */
export function writeVarint(buf: Buffer, o: number, n: number): number {
  while (n >= 0x80) {
    buf[o++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[o++] = n;
  return o;
}

/** Bytes of a length-delimited field of this length: tag, varint length, payload. */
export function framedSize(length: number): number {
  return 1 + varintSize(length) + length;
}

export function varint64Size(n: bigint): number {
  let size = 1;
  for (; n >= 0x80n; n >>= 7n) size++;
  return size;
}

export function writeVarint64(buf: Buffer, o: number, n: bigint): number {
  while (n >= 0x80n) {
    buf[o++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  buf[o++] = Number(n);
  return o;
}

/** A read position in a buffer, moved by the readers below. */
export interface Cursor {
  pos: number;
}

/**
 * A varint of at most 4 bytes (below 2^28, more than any length under the 32 MiB message
 * cap) at r.pos, or -1 when it is longer or runs past end (the generic decoders deal with
 * those).
 */
export function readVarint28(buf: Buffer, r: Cursor, end = buf.length): number {
  let value = 0;
  for (let shift = 0; shift < 28 && r.pos < end; shift += 7) {
    const b = buf[r.pos++];
    value |= (b & 0x7f) << shift;
    if (b < 0x80) return value;
  }
  return -1;
}

/** Reads a length prefix at r.pos; returns where the field ends, or -1 if it runs past limit. */
export function readLengthEnd(buf: Buffer, r: Cursor, limit = buf.length): number {
  const len = readVarint28(buf, r, limit);
  if (len < 0 || r.pos + len > limit) return -1;
  return r.pos + len;
}

/** A uint64 varint as a decimal string (proto-loader's longs: String), or undefined. */
export function readUint64String(buf: Buffer, r: Cursor, end = buf.length): string | undefined {
  let value = 0n;
  for (let shift = 0n; shift < 70n && r.pos < end; shift += 7n) {
    const b = buf[r.pos++];
    value |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return value <= 0xffff_ffff_ffff_ffffn ? value.toString() : undefined;
  }
  return undefined;
}
