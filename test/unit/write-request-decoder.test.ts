import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WriteRequest, WriteRequest__Output } from '../../src/common/generated/levelreplicator/v1/WriteRequest.js';
import { replicatorProto } from '../../src/common/proto.js';
import { decodeWrites, fastWriteRequestDeserializer } from '../../src/master/write-request-decoder.js';

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

function randomRequest(rand: (n: number) => number): WriteRequest {
  const bytes = (max: number) => Buffer.from(Array.from({ length: rand(max) }, () => rand(256)));
  return {
    writes: Array.from({ length: rand(5) }, () => ({
      mutations: Array.from({ length: rand(4) }, () => {
        const kind = rand(2) === 0 ? 'PUT' : 'DELETE';
        // Values are sometimes absent, sometimes long enough for a 3-byte length.
        const value = rand(3) === 0 ? undefined : bytes(rand(4) === 0 ? 20_000 : 200);
        return { kind, key: bytes(rand(4) === 0 ? 300 : 20), ...(value ? { value } : {}) };
      }),
    })),
  };
}

describe('fast Write request decoding', () => {
  it('gives exactly what proto-loader gives, for many requests', () => {
    const rand = rng(7);
    for (let i = 0; i < 300; i++) {
      const bytes = serialize(randomRequest(rand));
      assert.ok(decodeWrites(bytes), `request ${i} takes the fast path`);
      assert.deepStrictEqual(fast(bytes), generic(bytes), `request ${i}`);
    }
  });

  it('keys and values are views into the request, not copies', () => {
    const bytes = serialize({ writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from('k'), value: Buffer.from('v') }] }] });
    const m = fast(bytes).writes[0].mutations[0];
    assert.equal(m.key.buffer, bytes.buffer);
    assert.equal(m.value.buffer, bytes.buffer);
  });

  it('hands anything else to the generic decoder, which decodes or refuses it as before', () => {
    const valid = serialize({ writes: [{ mutations: [{ kind: 'DELETE', key: Buffer.from('k') }] }] });
    const cases: [string, Buffer][] = [
      ['an unknown top-level field', Buffer.concat([valid, Buffer.from([0x18, 0x01])])],
      ['an unknown mutation field', Buffer.from([0x0a, 0x04, 0x0a, 0x02, 0x20, 0x01])],
      ['an unknown kind', Buffer.from([0x0a, 0x04, 0x0a, 0x02, 0x08, 0x05])],
      ['a truncated message', valid.subarray(0, valid.length - 1)],
      ['a length past the end', Buffer.from([0x0a, 0x7f, 0x0a])],
    ];
    for (const [what, bytes] of cases) {
      assert.equal(decodeWrites(bytes), undefined, what);
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
    assert.deepStrictEqual(fast(Buffer.alloc(0)), generic(Buffer.alloc(0)), 'an empty request');
    const withPolicy = serialize({ writes: [{ mutations: [{ key: Buffer.from('k') }] }], ack: { followers: 1, timeoutMs: 50 } });
    assert.equal(decodeWrites(withPolicy), undefined, 'an acknowledgement policy');
    assert.deepStrictEqual(fast(withPolicy), generic(withPolicy));
  });
});
