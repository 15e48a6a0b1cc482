import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs/minimal.js';
import { MutationKind } from '../../src/wire/entry-codec.js';
import { isReplicatorError } from '../../src/common/errors.js';
import type { WriteRequest, WriteRequest__Output } from '../../src/wire/generated/levelreplicator/v1/WriteRequest.js';
import { MAX_KEY_BYTES, MAX_MUTATIONS_PER_REQUEST, MAX_MUTATIONS_PER_WRITE, MAX_VALUE_BYTES, MAX_WRITES_PER_REQUEST } from '../../src/common/limits.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { prepareWrites } from '../../src/wire/prepared-writes.js';
import { WireFormatError } from '../../src/wire/protobuf-wire.js';
import { strictRequestDecoder } from '../../src/wire/request-decoding.js';
import type { WriteRequestDecoder } from '../../src/wire/write-request-decoder.js';
import { FUZZ_SEED, fuzzIterations, mutate, Rng } from '../helpers/fuzz.js';
import { oldWritePath } from '../helpers/write-oracle.js';
import { countTopLevel } from '../helpers/wire-scan.js';

const method = replicatorProto().Master.service.Write;
const serialize = (req: WriteRequest) => method.requestSerialize(req) as Buffer;
const generic = (bytes: Buffer) => method.requestDeserialize(bytes) as WriteRequest__Output;
const decode = strictRequestDecoder(method) as WriteRequestDecoder;

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
    ...(rand(5) === 0 ? { ack: { followers: rand(3), timeoutMs: rand(2) * 100 } } : {}),
  };
}

type Outcome = ReturnType<typeof oldWritePath>;

/** What the one-pass decoder makes of a request, in the oracle's terms. */
function viaDecoder(bytes: Buffer): Outcome {
  try {
    return decode(bytes).prepared();
  } catch (err) {
    if (err instanceof WireFormatError) return 'MALFORMED';
    if (isReplicatorError(err)) return { code: err.code, message: err.message };
    throw err;
  }
}

function sameOutcome(actual: Outcome, expected: Outcome, what: string): void {
  if (typeof expected === 'string' || !('body' in expected)) {
    assert.deepEqual(typeof actual === 'string' || !('body' in actual) ? actual : 'accepted', expected, what);
    return;
  }
  assert.ok(typeof actual !== 'string' && 'body' in actual, `${what}: accepted, got ${JSON.stringify(actual)}`);
  assert.ok(actual.body.equals(expected.body), `${what}: bodies`);
  assert.deepEqual([...actual.ends], [...expected.ends], `${what}: ends`);
  assert.equal(actual.bytes, expected.bytes, `${what}: bytes`);
}

/** The request object is proto-loader's, down to the writes (deletes keep no ignored value). */
function sameRequestObject(bytes: Buffer, what: string): void {
  const g = generic(bytes);
  for (const w of g.writes) for (const m of w.mutations) if (m.kind === 'DELETE') m.value = Buffer.alloc(0);
  const req = decode(bytes);
  assert.deepStrictEqual({ writes: req.writes, ack: req.ack, epoch: req.epoch }, g, what);
}

describe('one-pass Write request decoding', () => {
  it('gives every request the outcome the old path (wire count, proto-loader, validation) gave it, down to the packed bytes and messages', () => {
    const rand = rng(7);
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      const bytes = serialize(randomRequest(rand));
      const expected = oldWritePath(bytes);
      sameOutcome(viaDecoder(bytes), expected, `request ${i}`);
      if (typeof expected === 'string' || !('body' in expected)) continue;
      accepted++;
      sameRequestObject(bytes, `request ${i}`);
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
      sameOutcome(viaDecoder(bytes), oldWritePath(bytes), what);
    }
  });

  it('decodes every other valid request as proto-loader does, refuses what validation refuses, and malformed bytes', () => {
    const valid = serialize({ writes: [{ mutations: [{ kind: 'DELETE', key: Buffer.from('k') }] }] });
    const cases: [string, Buffer, 'accepted' | 'MALFORMED' | { code: string; message: string }][] = [
      ['an unknown top-level field', Buffer.concat([valid, Buffer.from([0x78, 0x01])]), 'accepted'],
      ['an epoch', Buffer.concat([valid, Buffer.from([0x18, 0x02])]), 'accepted'],
      ['an unknown mutation field', Buffer.from([0x0a, 0x07, 0x0a, 0x05, 0x12, 0x01, 0x6b, 0x20, 0x01]), 'accepted'],
      ['an unknown field of a write, with a two-byte tag', Buffer.from([0x0a, 0x08, 0x0a, 0x03, 0x12, 0x01, 0x6b, 0x90, 0x01, 0x07]), 'accepted'],
      ['an unknown kind', Buffer.from([0x0a, 0x07, 0x0a, 0x05, 0x12, 0x01, 0x6b, 0x08, 0x05]), { code: 'INVALID_ARGUMENT', message: 'unknown mutation kind 5' }],
      ['a truncated message', valid.subarray(0, valid.length - 1), 'MALFORMED'],
      ['a length past the end', Buffer.from([0x0a, 0x7f, 0x0a]), 'MALFORMED'],
      ['an acknowledgement policy', serialize({ writes: [{ mutations: [{ key: Buffer.from('k') }] }], ack: { followers: 1, timeoutMs: 50 } }), 'accepted'],
      ['no writes', Buffer.alloc(0), { code: 'INVALID_ARGUMENT', message: 'a write request needs at least one write' }],
      ['only a policy', serialize({ writes: [], ack: { followers: 1 } }), { code: 'INVALID_ARGUMENT', message: 'a write request needs at least one write' }],
    ];
    for (const [what, bytes, expected] of cases) {
      const actual = viaDecoder(bytes);
      assert.deepEqual(typeof actual === 'string' || !('body' in actual) ? actual : 'accepted', expected, what);
      sameOutcome(actual, oldWritePath(bytes), what);
      if (expected === 'accepted') sameRequestObject(bytes, what);
    }
    assert.deepEqual(decode(cases[7][1]).ack, { followers: 1, timeoutMs: 50 });
    assert.equal(decode(cases[1][1]).epoch, 2);
    assert.equal(decode(valid).ack, null, 'no policy: null, as proto-loader gives it');
  });

  it('refuses known fields with the wrong wire type, which proto-loader misread', () => {
    const cases: [string, Buffer, RegExp][] = [
      ['writes as a varint', Buffer.from([0x08, 0x01]), /WriteRequest field 1 \(writes\) has wire type 0/],
      ['ack as a varint', Buffer.concat([serialize({ writes: [{ mutations: [{ key: Buffer.from('k') }] }] }), Buffer.from([0x10, 0x01])]), /WriteRequest field 2 \(ack\)/],
      ['mutations as fixed32', Buffer.from([0x0a, 0x05, 0x0d, 1, 2, 3, 4]), /Write field 1 \(mutations\) has wire type 5/],
      ['a key as a varint', Buffer.from([0x0a, 0x04, 0x0a, 0x02, 0x10, 0x01]), /Mutation field 2 \(key\) has wire type 0/],
      ['a kind as bytes', Buffer.from([0x0a, 0x07, 0x0a, 0x05, 0x12, 0x01, 0x6b, 0x0a, 0x00]), /Mutation field 1 \(kind\) has wire type 2/],
      ['policy followers as fixed64', Buffer.from([0x12, 0x09, 0x09, 1, 2, 3, 4, 5, 6, 7, 8]), /AckPolicy field 1 \(followers\)/],
      ['a kind over 32 bits', Buffer.from([0x0a, 0x0b, 0x0a, 0x09, 0x12, 0x01, 0x6b, 0x08, 0x80, 0x80, 0x80, 0x80, 0x10]), /does not fit in a 32-bit field/],
    ];
    for (const [what, bytes, reason] of cases) {
      assert.throws(() => decode(bytes), (err) => err instanceof WireFormatError && reason.test(err.message), what);
    }
    // The kind as a negative int32, sign-extended to 10 bytes as encoders write it: an unknown kind, not malformed.
    const negative = Buffer.from([0x0a, 0x10, 0x0a, 0x0e, 0x12, 0x01, 0x6b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert.deepEqual(viaDecoder(negative), { code: 'INVALID_ARGUMENT', message: 'unknown mutation kind -1' });
    sameOutcome(viaDecoder(negative), oldWritePath(negative), 'a negative kind');
  });

  it('reports the limit a check of the decoded request in order meets first, whatever else is broken', () => {
    const key = Buffer.from('k');
    const del = (k = key) => ({ kind: 'DELETE' as const, key: k });
    const many = (n: number, first = del()) => [first, ...Array.from({ length: n - 1 }, () => del())];
    const cases: [string, WriteRequest, string, RegExp][] = [
      ['an empty key before a write with too many mutations', { writes: [{ mutations: [del(Buffer.alloc(0))] }, { mutations: many(MAX_MUTATIONS_PER_WRITE + 1) }] }, 'EMPTY_KEY', /^key must not be empty \(write 0, mutation 0\)$/],
      ['a write with too many mutations, the first with an empty key', { writes: [{ mutations: many(MAX_MUTATIONS_PER_WRITE + 1, del(Buffer.alloc(0))) }] }, 'BATCH_TOO_LARGE', /^write 0 has 10001 mutations/],
      ['a write without mutations after one with a bad key', { writes: [{ mutations: [{ kind: 'PUT', key, value: Buffer.alloc(MAX_VALUE_BYTES + 1) }] }, { mutations: [] }] }, 'VALUE_TOO_LARGE', /^value is 1048577 bytes \(write 0, mutation 0\); the limit/],
      ['too many bytes and an empty key in the last write', { writes: [...Array.from({ length: 17 }, (_, i) => ({ mutations: [{ kind: 'PUT' as const, key: Buffer.from(`b${i}`), value: Buffer.alloc(MAX_VALUE_BYTES) }] })), { mutations: [del(Buffer.alloc(0))] }] }, 'EMPTY_KEY', /write 17, mutation 0/],
      ['too many bytes', { writes: Array.from({ length: 17 }, (_, i) => ({ mutations: [{ kind: 'PUT' as const, key: Buffer.from(`b${i}`), value: Buffer.alloc(MAX_VALUE_BYTES) }] })) }, 'BATCH_TOO_LARGE', /^request carries 17825833 bytes of keys and values; the limit is 16777216$/],
      ['an unknown kind with an empty key', { writes: [{ mutations: [{ kind: 3 as unknown as 'PUT', key: Buffer.alloc(0) }] }] }, 'EMPTY_KEY', /^key must not be empty$/],
      ['one mutation of one write: no place in the message', { writes: [{ mutations: [{ kind: 'PUT', key: Buffer.alloc(MAX_KEY_BYTES + 1) }] }] }, 'KEY_TOO_LARGE', /^key is 65537 bytes; the limit is 65536$/],
    ];
    for (const [what, request, code, message] of cases) {
      const bytes = serialize(request);
      const actual = viaDecoder(bytes);
      assert.ok(typeof actual !== 'string' && !('body' in actual), `${what}: refused`);
      assert.equal(actual.code, code, what);
      assert.match(actual.message, message, what);
      sameOutcome(actual, oldWritePath(bytes), what);
    }
  });

  it('refuses too many writes or mutations the moment the count passes the limit, decoding nothing after it', () => {
    const garbage = Buffer.from([0x0a, 0x7f]); // a truncated field: malformed, if it were ever read
    const writes = (n: number) => serialize({ writes: Array.from({ length: n }, () => ({ mutations: [{ kind: 'DELETE', key: Buffer.from('k') }] })) });
    const atLimit = viaDecoder(writes(MAX_WRITES_PER_REQUEST));
    assert.ok(typeof atLimit !== 'string' && 'body' in atLimit, 'exactly at the limit: accepted');
    const tooManyWrites = Buffer.concat([writes(MAX_WRITES_PER_REQUEST + 1), garbage]);
    assert.throws(() => decode(tooManyWrites), (err) => isReplicatorError(err, 'BATCH_TOO_LARGE') && err.message === `more than ${MAX_WRITES_PER_REQUEST} writes in one request`);
    // Empty mutations (0a 00, an empty key each) in one write, then bytes never read.
    const n = MAX_MUTATIONS_PER_REQUEST + 1;
    const inner = Buffer.alloc(n * 2 + garbage.length);
    for (let i = 0; i < n; i++) inner[2 * i] = 0x0a;
    garbage.copy(inner, n * 2);
    const len = protobuf.Writer.create().uint32(inner.length).finish();
    const tooManyMutations = Buffer.concat([Buffer.from([0x0a]), len, inner]);
    assert.throws(() => decode(tooManyMutations), (err) => isReplicatorError(err, 'BATCH_TOO_LARGE') && err.message === `more than ${MAX_MUTATIONS_PER_REQUEST} mutations in one request`);
  });

  it('random bytes and mutated requests: whatever it does not refuse as malformed, it decodes as the old path did', () => {
    const r = new Rng(FUZZ_SEED);
    const rand = rng(FUZZ_SEED);
    const templates = Array.from({ length: 20 }, () => serialize(randomRequest(rand)));
    const tally = { malformed: 0, refused: 0, accepted: 0 };
    for (let i = 0; i < fuzzIterations(3_000); i++) {
      const bytes = r.next() < 0.2 ? r.bytes(r.int(64)) : mutate(r, r.pick(templates));
      const actual = viaDecoder(bytes);
      const what = `seed ${FUZZ_SEED}, case ${i}: ${bytes.toString('hex').slice(0, 400)}`;
      if (actual === 'MALFORMED') {
        tally.malformed++;
        continue;
      }
      sameOutcome(actual, oldWritePath(bytes), what);
      if ('body' in actual) {
        tally.accepted++;
        const g = generic(bytes);
        for (const w of g.writes) for (const m of w.mutations) if (m.kind === 'DELETE') m.value = Buffer.alloc(0);
        const req = decode(bytes);
        assert.deepStrictEqual(req.writes, g.writes, what);
        // A policy sent twice is merged (protobuf's rule); protobufjs keeps the last one.
        if (countTopLevel(bytes, 0x12) <= 1) assert.deepStrictEqual(req.ack, g.ack, what);
      } else {
        tally.refused++;
      }
    }
    process.stdout.write(`# write decoder fuzz (seed ${FUZZ_SEED}): ${JSON.stringify(tally)}\n`);
    assert.ok(tally.malformed > 100 && tally.refused > 20 && tally.accepted > 100, JSON.stringify(tally));
  });

  it('merges an acknowledgement policy sent twice, as protobuf merges a message field', () => {
    const bytes = Buffer.concat([serialize({ writes: [{ mutations: [{ key: Buffer.from('k') }] }], ack: { followers: 2 } }), serialize({ writes: [], ack: { timeoutMs: 70 } })]);
    assert.deepEqual(decode(bytes).ack, { followers: 2, timeoutMs: 70 });
  });
});

describe('request body memory', () => {
  const request = (n: number, valueBytes: number) =>
    serialize({ writes: Array.from({ length: n }, (_, i) => ({ mutations: [{ kind: 'PUT', key: Buffer.from(`key-${i}`), value: Buffer.alloc(valueBytes, i) }] })) });

  it('a small body gets a buffer of its own size; a pooled-size one stays in its slab, which release() lends to the next request', () => {
    const small = decode(request(1, 10)).prepared();
    assert.ok(small.body.buffer.byteLength < 256 * 1024, 'not a slab');
    const a = decode(request(100, 200)).prepared(); // about 21 KB: pooled
    assert.equal(a.body.buffer.byteLength, 256 * 1024);
    const slab = a.body.buffer;
    a.release();
    const b = decode(request(100, 200)).prepared();
    assert.equal(b.body.buffer, slab, 'the freed slab is reused');
    b.release();
    const refused = decode(Buffer.concat([request(100, 200), serialize({ writes: [{ mutations: [{ key: Buffer.alloc(0) }] }] })]));
    assert.throws(() => refused.prepared(), (err) => isReplicatorError(err, 'EMPTY_KEY'));
    const c = decode(request(100, 200)).prepared();
    assert.equal(c.body.buffer, slab, 'a refused request gave its slab back');
    c.release();
  });

  it('a body that outgrows its slab moves once, to a buffer of about its size', () => {
    const bytes = request(100, 20_000);
    const big = decode(bytes).prepared();
    sameOutcome(big, oldWritePath(bytes), '2 MB of writes');
    assert.ok(big.body.buffer.byteLength <= big.body.length * 1.05 + 1024, `${big.body.buffer.byteLength} bytes for a ${big.body.length}-byte body`);
    big.release();
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
