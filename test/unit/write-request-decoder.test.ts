import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MutationKind } from '../../src/wire/entry-codec.js';
import { isReplicatorError } from '../../src/common/errors.js';
import type { WriteRequest, WriteRequest__Output } from '../../src/wire/generated/levelreplicator/v1/WriteRequest.js';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../../src/common/limits.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { validateWrites } from '../../src/wire/write-validation.js';
import { prepareWrites, type PreparedWrites } from '../../src/wire/prepared-writes.js';
import { decodePrepared, fastWriteRequestDeserializer, preparedOf } from '../../src/wire/write-request-decoder.js';

const method = replicatorProto().Master.service.Write;
const serialize = (req: WriteRequest) => method.requestSerialize(req) as Buffer;
const generic = (bytes: Buffer) => method.requestDeserialize(bytes) as WriteRequest__Output;
const fast = fastWriteRequestDeserializer(generic);

/** A deterministic pseudo-random source, so a failure reproduces. */
function rng(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
}

/** Requests, some of them invalid (an empty key, a write without mutations, no writes). */
function randomRequest(rand: (n: number) => number): WriteRequest {
  const bytes = (min: number, max: number) => Buffer.from(Array.from({ length: min + rand(max - min + 1) }, () => rand(256)));
  const count = (n: number) => (rand(40) === 0 ? 0 : 1 + rand(n));
  return {
    writes: Array.from({ length: count(4) }, () => ({
      mutations: Array.from({ length: count(3) }, () => {
        const kind = rand(2) === 0 ? 'PUT' : 'DELETE';
        // Values are sometimes absent, sometimes long enough for a 3-byte length (and sent for deletes, which ignore them).
        const value = rand(3) === 0 ? undefined : bytes(0, rand(4) === 0 ? 20_000 : 200);
        const key = rand(60) === 0 ? Buffer.alloc(0) : bytes(1, rand(4) === 0 ? 300 : 20);
        return { kind, key, ...(value ? { value } : {}) };
      }),
    })),
  };
}

/** What the generic path makes of a request: its packed writes, or the error code refusing it. */
function viaGeneric(bytes: Buffer): PreparedWrites | string {
  try {
    const v = validateWrites(generic(bytes).writes);
    return prepareWrites(v.writes, v.bytes);
  } catch (err) {
    if (isReplicatorError(err)) return err.code;
    throw err;
  }
}

function samePrepared(a: PreparedWrites, b: PreparedWrites, what: string): void {
  assert.ok(a.body.equals(b.body), `${what}: bodies`);
  assert.deepEqual([...a.ends], [...b.ends], `${what}: ends`);
  assert.equal(a.bytes, b.bytes, `${what}: bytes`);
}

describe('fast Write request decoding', () => {
  it('accepts exactly the requests validation accepts, packed exactly as the generic path packs them', () => {
    const rand = rng(7);
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      const bytes = serialize(randomRequest(rand));
      const expected = viaGeneric(bytes);
      const prepared = decodePrepared(bytes);
      if (typeof expected === 'string') {
        assert.equal(prepared, undefined, `request ${i} is refused (${expected}) by the generic path`);
        assert.equal(preparedOf(fast(bytes)), undefined);
        continue;
      }
      accepted++;
      assert.ok(prepared, `request ${i} takes the fast path`);
      samePrepared(prepared, expected, `request ${i}`);
      // The request object is proto-loader's, down to the writes (deletes keep no ignored value).
      const g = generic(bytes);
      for (const w of g.writes) for (const m of w.mutations) if (m.kind === 'DELETE') m.value = Buffer.alloc(0);
      assert.deepStrictEqual({ ...fast(bytes) }, g, `request ${i}`);
    }
    assert.ok(accepted > 100, `${accepted} valid requests were tried`);
  });

  it('applies the limits at their exact edges', () => {
    const one = (key: Buffer, value: Buffer) => serialize({ writes: [{ mutations: [{ kind: 'PUT', key, value }] }] });
    for (const [what, bytes] of [
      ['a key at the limit', one(Buffer.alloc(MAX_KEY_BYTES, 1), Buffer.alloc(1))],
      ['a key over the limit', one(Buffer.alloc(MAX_KEY_BYTES + 1, 1), Buffer.alloc(1))],
      ['a value at the limit', one(Buffer.from('k'), Buffer.alloc(MAX_VALUE_BYTES, 2))],
      ['a value over the limit', one(Buffer.from('k'), Buffer.alloc(MAX_VALUE_BYTES + 1, 2))],
    ] as const) {
      const expected = viaGeneric(bytes);
      const prepared = decodePrepared(bytes);
      if (typeof expected === 'string') assert.equal(prepared, undefined, what);
      else samePrepared(prepared!, expected, what);
    }
  });

  it('hands anything else to the generic decoder, which decodes or refuses it as before', () => {
    const valid = serialize({ writes: [{ mutations: [{ kind: 'DELETE', key: Buffer.from('k') }] }] });
    const cases: [string, Buffer][] = [
      ['an unknown top-level field', Buffer.concat([valid, Buffer.from([0x18, 0x01])])],
      ['an unknown mutation field', Buffer.from([0x0a, 0x07, 0x0a, 0x05, 0x12, 0x01, 0x6b, 0x20, 0x01])],
      ['an unknown kind', Buffer.from([0x0a, 0x07, 0x0a, 0x05, 0x12, 0x01, 0x6b, 0x08, 0x05])],
      ['a truncated message', valid.subarray(0, valid.length - 1)],
      ['a length past the end', Buffer.from([0x0a, 0x7f, 0x0a])],
      ['an acknowledgement policy', serialize({ writes: [{ mutations: [{ key: Buffer.from('k') }] }], ack: { followers: 1, timeoutMs: 50 } })],
      ['no writes', Buffer.alloc(0)],
    ];
    for (const [what, bytes] of cases) {
      assert.equal(decodePrepared(bytes), undefined, what);
      let expected: unknown;
      let expectedError: unknown;
      try {
        expected = generic(bytes);
      } catch (err) {
        expectedError = err;
      }
      if (expectedError) assert.throws(() => fast(bytes), what);
      else assert.deepStrictEqual(fast(bytes), expected, what);
    }
  });
});

describe('pooled request bodies', () => {
  const sized = (n: number, valueBytes: number) => prepareWrites(Array.from({ length: n }, (_, i) => [{ kind: MutationKind.PUT, key: Buffer.from(`key-${i}`), value: Buffer.alloc(valueBytes, i) }]), 0);

  it('a released body slab is lent to the next request, once; its old owner can no longer read it', () => {
    const a = sized(100, 200); // about 21 KB: pooled
    const slab = a.body.buffer;
    a.release();
    a.release(); // twice is harmless: the slab is given back once
    const b = sized(100, 200);
    const c = sized(100, 200);
    assert.equal(b.body.buffer, slab, 'the freed slab is reused');
    assert.notEqual(c.body.buffer, slab, 'and lent to one request only');
    assert.throws(() => a.liveBody, /released request body/);
    assert.equal(b.liveBody.length, b.ends[b.count - 1]);
    b.release();
    c.release();
  });

  it('small and oversized bodies are not pooled', () => {
    const small = sized(1, 10);
    const big = sized(2, 200 * 1024); // over the 256 KiB slab
    assert.equal(small.body.length, small.ends[0]);
    assert.equal(big.body.byteLength, big.ends[1]);
    assert.ok(big.body.buffer.byteLength >= big.body.length);
    small.release();
    big.release();
    const next = sized(1, 10);
    assert.notEqual(next.body.buffer, big.body.buffer, 'a big body is not handed out again');
  });
});

