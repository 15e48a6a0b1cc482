/**
 * The pieces of the protobuf wire format our own codecs need: sizes and writers for the
 * hand-written encoders (entry batches, snapshot chunks, log chunks), lenient readers for
 * the fast paths that hand anything unexpected to proto-loader (log chunks, the follower's
 * stream decoder), and strict readers for requests (below), which refuse anything
 * unexpected themselves.
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

/**
 * Strict reading, for requests (see message-decoder.ts and write-request-decoder.ts). Every
 * reader below takes the end of the enclosing message and throws a WireFormatError naming
 * what is wrong and where; nothing past `end` is ever read, and nothing is guessed:
 *
 * - a varint is at most 10 bytes and fits in 64 bits;
 * - a 32-bit field's varint is a uint32 in at most 5 bytes, or a negative int32 sign-extended
 *   to 10 bytes (what every encoder writes); anything else does not fit in 32 bits;
 * - a tag is at most 5 bytes, its field number is not 0, its wire type is 0, 1, 2 or 5
 *   (proto3 has no groups);
 * - a length-delimited field and a fixed-width value end within their message.
 */
export class WireFormatError extends Error {
  constructor(reason: string, at: number) {
    super(`${reason} (at byte ${at})`);
    this.name = 'WireFormatError';
  }
}

/** The high 32 bits of the varint readVarint returned last (0 for any value below 2^32). */
let varintHigh = 0;

/**
 * One varint at r.pos: returns its low 32 bits (unsigned) and leaves its high 32 bits in
 * varintHigh (see readVarintHigh).
 */
export function readVarint(buf: Buffer, r: Cursor, end: number): number {
  const start = r.pos;
  let lo = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (r.pos >= end) throw new WireFormatError('a varint that runs past the end of its message', start);
    const b = buf[r.pos++];
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      varintHigh = 0;
      return lo >>> 0;
    }
  }
  if (r.pos >= end) throw new WireFormatError('a varint that runs past the end of its message', start);
  let b = buf[r.pos++];
  lo = (lo | ((b & 0x0f) << 28)) >>> 0;
  let hi = (b & 0x7f) >>> 4;
  // Bytes 6 to 9 carry bits 35 to 62; the 10th carries bit 63 alone.
  for (let shift = 3; b >= 0x80; shift += 7) {
    if (r.pos >= end) throw new WireFormatError('a varint that runs past the end of its message', start);
    b = buf[r.pos++];
    if (shift === 31) {
      if (b >= 0x80) throw new WireFormatError('a varint longer than 10 bytes', start);
      if (b > 1) throw new WireFormatError('a varint that overflows 64 bits', start);
      hi |= b << 31;
      break;
    }
    hi |= (b & 0x7f) << shift;
  }
  varintHigh = hi >>> 0;
  return lo;
}

/** The high 32 bits of the last varint readVarint read. */
export function readVarintHigh(): number {
  return varintHigh;
}

/** A varint for a 32-bit field (int32, uint32, sint32, bool, enum), as its 32 bits unsigned. */
export function readVarint32(buf: Buffer, r: Cursor, end: number): number {
  const start = r.pos;
  const lo = readVarint(buf, r, end);
  const bytes = r.pos - start;
  if (varintHigh === 0 ? bytes <= 5 : varintHigh === 0xffff_ffff && lo >= 0x8000_0000) return lo;
  throw new WireFormatError(`a ${bytes}-byte varint that does not fit in a 32-bit field`, start);
}

/** A field's tag: field number << 3 | wire type. */
export function readTag(buf: Buffer, r: Cursor, end: number): number {
  const start = r.pos;
  let tag: number;
  if (r.pos < end && buf[r.pos] < 0x80) {
    tag = buf[r.pos++];
  } else {
    tag = readVarint(buf, r, end);
    if (varintHigh !== 0 || r.pos - start > 5) throw new WireFormatError('a field tag that does not fit in 32 bits', start);
  }
  if (tag >>> 3 === 0) throw new WireFormatError('field number 0, which no message has', start);
  const wireType = tag & 7;
  if (wireType === 3 || wireType === 4) throw new WireFormatError(`a group (wire type ${wireType}) in field ${tag >>> 3}; proto3 messages have none`, start);
  if (wireType > 5) throw new WireFormatError(`an invalid wire type ${wireType} in field ${tag >>> 3}`, start);
  return tag;
}

/** A length prefix at r.pos; returns where its field ends (at most end). */
export function readFieldEnd(buf: Buffer, r: Cursor, end: number): number {
  const start = r.pos;
  const len = readVarint(buf, r, end);
  if (varintHigh !== 0 || len > end - r.pos) {
    throw new WireFormatError(`a length-delimited field of ${varintHigh !== 0 ? 'over 2^32' : len} bytes where ${end - r.pos} remain`, start);
  }
  return r.pos + len;
}

/** Checks that n more bytes (a fixed-width value) end within the message. */
export function needBytes(r: Cursor, end: number, n: number): void {
  if (end - r.pos < n) throw new WireFormatError(`a value of ${n} bytes where ${end - r.pos} remain`, r.pos);
}

/** Skips the value of a field no decoder knows (protobuf allows them), checking it as strictly as a known one. */
export function skipField(buf: Buffer, r: Cursor, end: number, wireType: number): void {
  switch (wireType) {
    case 0:
      readVarint(buf, r, end);
      return;
    case 1:
      needBytes(r, end, 8);
      r.pos += 8;
      return;
    case 2:
      r.pos = readFieldEnd(buf, r, end);
      return;
    case 5:
      needBytes(r, end, 4);
      r.pos += 4;
      return;
    default:
      throw new WireFormatError(`an invalid wire type ${wireType}`, r.pos);
  }
}

/** A 64-bit value given as its low and high 32 bits (unsigned), as a decimal string: unsigned, or signed (int64String). */
export function uint64String(lo: number, hi: number): string {
  // Below 2^53 a double holds it exactly, and String() is far cheaper than a BigInt.
  return hi < 0x20_0000 ? String(hi * 0x1_0000_0000 + lo) : ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

export function int64String(lo: number, hi: number): string {
  return hi < 0x8000_0000 ? uint64String(lo, hi) : BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}
