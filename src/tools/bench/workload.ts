import crypto from 'node:crypto';
import { varintSize, writeVarint } from '../../wire/protobuf-wire.js';

/**
 * The benchmark's workload, shared by every row (raw LevelDB, the replicator, Redis):
 * entry i is a 16-byte key and a value of valueBytes.
 *
 * Keys are "key:" and 12 decimal digits of (i * KEY_MULTIPLIER) mod 10^12: distinct for
 * distinct i (the multiplier is coprime with 10), and spread over the key space in an
 * order unrelated to i, as real keys are, so LevelDB does not get an append-only load.
 * Values are slices of a random pool, so they neither repeat nor compress.
 */
export const KEY_BYTES = 16;
const KEY_DIGITS = 12;
const KEY_MODULUS = 1e12;
const KEY_MULTIPLIER = 999_983; // prime, coprime with 10; i * KEY_MULTIPLIER stays exact below 2^53 for i < 9e9
const PREFIX = Buffer.from('key:');

export class Workload {
  private readonly pool: Buffer;

  constructor(readonly valueBytes: number) {
    this.pool = crypto.randomBytes(Math.max(64 * 1024, valueBytes * 4));
  }

  /** Writes key i into out at offset (KEY_BYTES bytes). */
  writeKey(i: number, out: Buffer, offset: number): void {
    PREFIX.copy(out, offset);
    let n = (i * KEY_MULTIPLIER) % KEY_MODULUS;
    for (let d = offset + KEY_BYTES - 1; d >= offset + KEY_BYTES - KEY_DIGITS; d--) {
      out[d] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
  }

  key(i: number): Buffer {
    const k = Buffer.allocUnsafe(KEY_BYTES);
    this.writeKey(i, k, 0);
    return k;
  }

  /** Value i: a view into the random pool (no copy). */
  value(i: number): Buffer {
    const off = (i * 97) % (this.pool.length - this.valueBytes);
    return this.pool.subarray(off, off + this.valueBytes);
  }
}

/**
 * The protobuf bytes of a WriteRequest with `count` writes, one PUT each, for entries
 * first .. first + count - 1. Encoded by hand, once per request, so the load generator
 * spends little of the shared CPU (as redis-benchmark pre-builds its commands).
 *
 * WriteRequest { repeated Write writes = 1 }; Write { repeated Mutation mutations = 1 };
 * Mutation { Kind kind = 1 (PUT = 0, the default, is not sent); bytes key = 2; bytes value = 3 }.
 */
export function encodeWriteRequest(w: Workload, first: number, count: number): Buffer {
  const v = w.valueBytes;
  const mutationLen = 1 + varintSize(KEY_BYTES) + KEY_BYTES + 1 + varintSize(v) + v;
  const writeLen = 1 + varintSize(mutationLen) + mutationLen;
  const perWrite = 1 + varintSize(writeLen) + writeLen;
  const buf = Buffer.allocUnsafe(perWrite * count);
  let o = 0;
  for (let i = first; i < first + count; i++) {
    buf[o++] = 0x0a; // WriteRequest.writes, length-delimited
    o = writeVarint(buf, o, writeLen);
    buf[o++] = 0x0a; // Write.mutations, length-delimited
    o = writeVarint(buf, o, mutationLen);
    buf[o++] = 0x12; // Mutation.key
    o = writeVarint(buf, o, KEY_BYTES);
    w.writeKey(i, buf, o);
    o += KEY_BYTES;
    buf[o++] = 0x1a; // Mutation.value
    o = writeVarint(buf, o, v);
    o += w.value(i).copy(buf, o);
  }
  return buf;
}
