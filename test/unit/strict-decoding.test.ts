import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import protobuf from 'protobufjs';
import type { ReplicatorError } from '../../src/common/errors.js';
import { WireType } from '../../src/wire/field-tags.js';
import { PROTO_FILE, replicatorProto } from '../../src/wire/proto.js';
import { hardenService, RefusedRequest } from '../../src/wire/request-decoding.js';
import { DecodedWriteRequest } from '../../src/wire/write-request-decoder.js';
import { FUZZ_SEED, fuzzIterations, mutate, Rng } from '../helpers/fuzz.js';
import { countTopLevel } from '../helpers/wire-scan.js';

/**
 * Strict decoding of every request of every service (request-decoding.ts,
 * message-decoder.ts), against protobufjs (proto-loader's deserializers) as the
 * reference: whatever the strict decoders accept, they decode exactly as proto-loader
 * does; what they refuse is MALFORMED_REQUEST, before any handler.
 */
const services = replicatorProto();
/** Any of our methods (method syntax: a serializer of any request type fits). */
interface AnyMethod {
  path: string;
  requestSerialize(value: object): Buffer;
  requestDeserialize(bytes: Buffer): unknown;
}
const METHODS: AnyMethod[] = [...Object.values(services.Master.service), ...Object.values(services.Store.service)];
const strict = new Map<string, grpc.deserialize<unknown>>();
for (const service of [services.Master.service, services.Store.service]) {
  for (const m of Object.values(hardenService(service))) strict.set(m.path, m.requestDeserialize);
}
const reference = new Map(METHODS.map((m) => [m.path, m.requestDeserialize]));
const root = new protobuf.Root().loadSync(PROTO_FILE);
root.resolveAll();
/** The request type of each method, as proto-loader names its fields. */
const requestType = new Map(
  METHODS.map((m) => {
    const [, service, name] = m.path.split('/');
    return [m.path, root.lookupService(service).methods[name].resolvedRequestType!];
  }),
);
const short = (path: string) => path.slice(path.lastIndexOf('/') + 1);

type Result = { refused: ReplicatorError } | { value: unknown } | { invalid: string };

/** A Write request is compared as its proto-loader fields; one the write limits refuse, by that refusal. */
function strictly(path: string, bytes: Buffer): Result {
  const out = strict.get(path)!(bytes);
  if (out instanceof RefusedRequest) return { refused: out.error };
  if (out instanceof DecodedWriteRequest) {
    try {
      return { value: { writes: out.writes, ack: out.ack } };
    } catch (err) {
      return { invalid: (err as ReplicatorError).code };
    }
  }
  return { value: out };
}

function byReference(path: string, bytes: Buffer): unknown {
  const value = reference.get(path)!(bytes) as Record<string, unknown>;
  if (short(path) !== 'Write') return value;
  // A delete's value is ignored: the packed request keeps none.
  const req = value as { writes: { mutations: { kind: string; value: Buffer }[] }[]; ack: unknown };
  for (const w of req.writes) for (const m of w.mutations) if (m.kind === 'DELETE') m.value = Buffer.alloc(0);
  return { writes: req.writes, ack: req.ack };
}

function assertRefused(path: string, bytes: Buffer, reason: RegExp | undefined, what: string): void {
  const r = strictly(path, bytes);
  assert.ok('refused' in r, `${what}: refused (got ${JSON.stringify(r)})`);
  assert.equal(r.refused.code, 'MALFORMED_REQUEST', what);
  assert.match(r.refused.message, new RegExp(`^the ${short(path)} request is not a valid protobuf message: `), what);
  if (reason) assert.match(r.refused.message, reason, what);
}

function assertSameAsReference(path: string, bytes: Buffer, what: string): void {
  const r = strictly(path, bytes);
  assert.ok(!('refused' in r), `${what}: accepted, got ${'refused' in r ? r.refused.message : ''}`);
  if ('value' in r) assert.deepStrictEqual(r.value, byReference(path, bytes), what);
}

/** Random values for every field of a message type (proto-loader's object form). */
function randomMessage(type: protobuf.Type, rng: Rng, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    if (rng.next() < 0.3) continue;
    const one = () => randomValue(f, rng, depth);
    out[f.name] = f.repeated ? Array.from({ length: rng.int(4) }, one) : one();
  }
  return out;
}

function randomValue(f: protobuf.Field, rng: Rng, depth: number): unknown {
  if (f.resolvedType instanceof protobuf.Type) return depth > 2 ? {} : randomMessage(f.resolvedType, rng, depth + 1);
  if (f.resolvedType instanceof protobuf.Enum) return rng.pick(Object.keys(f.resolvedType.values));
  const u32 = () => rng.pick([0, 1, 127, 128, 16_384, 2 ** 31, 2 ** 32 - 1, rng.int(2 ** 32)]);
  switch (f.type) {
    case 'uint32':
      return u32();
    case 'uint64':
      return rng.pick(['0', '1', '300', '9007199254740993', '18446744073709551615', String(rng.int(2 ** 31))]);
    case 'bool':
      return rng.next() < 0.5;
    case 'bytes':
      return rng.bytes(rng.pick([0, 1, 16, 200]));
    case 'string':
      return rng.pick(['', 'a', '127.0.0.1:50051', 'caf\u00e9 \u{1f600}', 'x'.repeat(300)]);
    default:
      throw new Error(`no generator for ${f.type}`);
  }
}

/** Valid encodings of every method's request, as our clients send them. */
function samples(path: string, rng: Rng, n: number): Buffer[] {
  const type = requestType.get(path)!;
  const method = METHODS.find((m) => m.path === path)!;
  return Array.from({ length: n }, () => method.requestSerialize(randomMessage(type, rng)) as Buffer);
}

/** The byte offsets where each top-level field of a well-formed message starts, and its end. */
function fieldBoundaries(bytes: Buffer): Set<number> {
  const r = protobuf.Reader.create(bytes);
  const at = new Set([0]);
  while (r.pos < r.len) {
    r.skipType(r.uint32() & 7);
    at.add(r.pos);
  }
  return at;
}

const varint = (n: bigint): number[] => {
  const out: number[] = [];
  for (; n >= 0x80n; n >>= 7n) out.push(Number(n & 0x7fn) | 0x80);
  out.push(Number(n));
  return out;
};
const tagBytes = (field: number, wireType: number) => varint((BigInt(field) << 3n) | BigInt(wireType));
/** A valid value of each wire type. */
const VALUE_OF: Record<number, number[]> = {
  [WireType.VARINT]: [0x01],
  [WireType.I64]: [1, 2, 3, 4, 5, 6, 7, 8],
  [WireType.LEN]: [0x01, 0x41],
  [WireType.I32]: [1, 2, 3, 4],
};
/** The field numbers leading to a field of a request, each message wrapping the next. */
const wrap = (path: number[], inner: number[]): Buffer => {
  let bytes = inner;
  for (let i = path.length - 1; i >= 0; i--) bytes = [...tagBytes(path[i], WireType.LEN), ...varint(BigInt(bytes.length)), ...bytes];
  return Buffer.from(bytes);
};

/** Every field of a request, nested ones included: [field numbers to it, its type, the field]. */
function allFields(type: protobuf.Type, path: number[] = [], seen = new Set<protobuf.Type>()): [number[], protobuf.Type, protobuf.Field][] {
  const out: [number[], protobuf.Type, protobuf.Field][] = [];
  seen.add(type);
  for (const f of type.fieldsArray) {
    out.push([path, type, f]);
    if (f.resolvedType instanceof protobuf.Type && !seen.has(f.resolvedType)) out.push(...allFields(f.resolvedType, [...path, f.id], seen));
  }
  return out;
}

function declaredWireType(f: protobuf.Field): number {
  if (f.resolvedType instanceof protobuf.Type) return WireType.LEN;
  if (f.resolvedType instanceof protobuf.Enum) return WireType.VARINT;
  return protobuf.types.basic[f.type as keyof typeof protobuf.types.basic];
}

describe('strict request decoding, on every method of the Master and Store services', () => {
  it('refuses the raw payloads protobufjs took for valid requests', () => {
    assertRefused('/levelreplicator.v1.Master/Subscribe', Buffer.from('08631501', 'hex'), /SubscribeRequest field 2 \(fromSeq\) has wire type 5/, 'Subscribe 08631501');
    assertRefused('/levelreplicator.v1.Master/Ack', Buffer.from('0affffffff0f', 'hex'), /AckRequest field 1 \(followerId\) has wire type 2/, 'Ack 0affffffff0f');
    assertRefused('/levelreplicator.v1.Master/Ack', Buffer.from('08011501', 'hex'), /AckRequest field 2 \(appliedSeq\) has wire type 5/, 'Ack 08011501');
    assertRefused('/levelreplicator.v1.Store/Get', Buffer.from('080110', 'hex'), /GetRequest field 1 \(key\) has wire type 0/, 'Get 080110');
    // What protobufjs made of them, for the record: each decoded without complaint.
    assert.equal((byReference('/levelreplicator.v1.Master/Subscribe', Buffer.from('08631501', 'hex')) as { followerId: number }).followerId, 99);
    assert.doesNotThrow(() => byReference('/levelreplicator.v1.Store/Get', Buffer.from('080110', 'hex')));
  });

  it('decodes valid requests exactly as proto-loader does', () => {
    const rng = new Rng(FUZZ_SEED);
    for (const m of METHODS) {
      for (const [i, bytes] of samples(m.path, rng, 200).entries()) assertSameAsReference(m.path, bytes, `${short(m.path)} sample ${i}`);
    }
  });

  it('refuses a known field sent with a wire type its type does not have, at any depth', () => {
    let cases = 0;
    for (const m of METHODS) {
      for (const [path, parent, f] of allFields(requestType.get(m.path)!)) {
        const declared = declaredWireType(f);
        for (const wireType of [WireType.VARINT, WireType.I64, WireType.LEN, WireType.I32]) {
          if (wireType === declared || (f.repeated && wireType === WireType.LEN)) continue;
          const bytes = wrap(path, [...tagBytes(f.id, wireType), ...VALUE_OF[wireType]]);
          assertRefused(m.path, bytes, new RegExp(`${parent.name} field ${f.id} \\(${f.name}\\) has wire type ${wireType}`), `${short(m.path)}: ${parent.name}.${f.name} as wire type ${wireType}`);
          cases++;
        }
      }
    }
    assert.ok(cases > 40, `${cases} cases`);
  });

  it('refuses every truncation inside a field; a cut between fields is a valid message, decoded as proto-loader does', () => {
    const rng = new Rng(FUZZ_SEED + 1);
    for (const m of METHODS) {
      for (const bytes of samples(m.path, rng, 20)) {
        const boundaries = fieldBoundaries(bytes);
        for (let n = 0; n < bytes.length; n++) {
          const cut = bytes.subarray(0, n);
          if (boundaries.has(n)) assertSameAsReference(m.path, cut, `${short(m.path)} cut at a field boundary, ${n} of ${bytes.length} bytes`);
          else assertRefused(m.path, cut, undefined, `${short(m.path)} cut inside a field: ${cut.toString('hex')}`);
        }
      }
    }
  });

  it('refuses over-long and overflowing varints; takes every valid encoding of a value as proto-loader does', () => {
    const get = '/levelreplicator.v1.Store/Get';
    const ack = '/levelreplicator.v1.Master/Ack';
    const refusals: [string, string, RegExp][] = [
      [get, '10ffffffffffffffffffff01', /a varint longer than 10 bytes/],
      [get, '10ffffffffffffffffff02', /a varint that overflows 64 bits/],
      [get, '10ffffffffffffffffff7f', /a varint that overflows 64 bits/],
      [get, '10ffffff', /a varint that runs past the end/],
      [ack, '088080808010', /a 5-byte varint that does not fit in a 32-bit field/],
      [ack, '08808080808000', /a 6-byte varint that does not fit in a 32-bit field/],
      [ack, '08ffffffffffffffff7f01', /does not fit in a 32-bit field/], // 10 bytes, not a sign extension
      [ack, '08ffffffffffffffffffff01', /a varint longer than 10 bytes/],
      [ack, 'ffffffffff0f', /a field tag that does not fit in 32 bits/],
    ];
    for (const [path, hex, reason] of refusals) assertRefused(path, Buffer.from(hex, 'hex'), reason, `${short(path)} ${hex}`);
    const accepted: [string, string][] = [
      [get, '10ffffffffffffffffff01'], // 2^64 - 1 in 10 bytes
      [get, '1080808080808080808000'], // 0, padded to 10 bytes
      [get, '108180808000'], // 1, padded
      [ack, '08ffffffff0f'], // 2^32 - 1
      [ack, '08ffffffffffffffffff01'], // -1 as an int32 writes it: its 32 bits as a uint32
      [ack, '0880808080f8ffffffff01'], // -2^31 likewise
      [ack, '8a0100'], // field 17 (unknown), a two-byte tag, empty
      [ack, '880005'], // field 1 under a tag padded to two bytes: 5
      [ack, '08818000'], // 1, padded to 3 bytes
    ];
    for (const [path, hex] of accepted) assertSameAsReference(path, Buffer.from(hex, 'hex'), `${short(path)} ${hex}`);
  });

  it('skips unknown fields of every wire type and tag length; refuses field 0, groups, wire types 6 and 7, and unknown fields cut short', () => {
    const rng = new Rng(FUZZ_SEED + 2);
    const unknown = [15, 16, 2047, 2048, 536_870_911].flatMap((field) =>
      [WireType.VARINT, WireType.I64, WireType.LEN, WireType.I32].map((wt) => Buffer.from([...tagBytes(field, wt), ...VALUE_OF[wt]])),
    );
    for (const m of METHODS) {
      for (const bytes of samples(m.path, rng, 10)) {
        const at = [...fieldBoundaries(bytes)];
        const pos = rng.pick(at);
        const extra = rng.pick(unknown);
        const withUnknown = Buffer.concat([bytes.subarray(0, pos), extra, bytes.subarray(pos)]);
        assertSameAsReference(m.path, withUnknown, `${short(m.path)} with ${extra.toString('hex')} at ${pos}`);
        const a = strictly(m.path, withUnknown);
        const b = strictly(m.path, bytes);
        assert.deepStrictEqual(a, b, 'the unknown field changes nothing');
      }
      for (const [hex, reason] of [
        ['00', /field number 0/],
        ['0001', /field number 0/],
        ['7b', /a group \(wire type 3\) in field 15/],
        ['7c', /a group \(wire type 4\) in field 15/],
        ['7e01', /an invalid wire type 6/],
        ['7f', /an invalid wire type 7/],
        ['7a05414243', /a length-delimited field of 5 bytes where 3 remain/],
        ['7d0102', /a value of 4 bytes where 2 remain/],
        ['7901020304', /a value of 8 bytes where 4 remain/],
        ['78ff', /runs past the end/],
      ] as const) {
        assertRefused(m.path, Buffer.from(hex, 'hex'), reason, `${short(m.path)} ${hex}`);
      }
    }
  });

  it('random bytes and mutated requests: refused as malformed, or decoded exactly as proto-loader decodes them', () => {
    const rng = new Rng(FUZZ_SEED + 3);
    const tally: Record<string, number> = {};
    for (const m of METHODS) {
      const templates = samples(m.path, rng, 20);
      for (let i = 0; i < fuzzIterations(1_500); i++) {
        const bytes = rng.next() < 0.2 ? rng.bytes(rng.int(32)) : mutate(rng, rng.pick(templates));
        const what = `seed ${FUZZ_SEED}: ${short(m.path)} ${bytes.toString('hex').slice(0, 300)}`;
        const r = strictly(m.path, bytes);
        const outcome = 'refused' in r ? 'refused' : 'accepted';
        tally[`${short(m.path)} ${outcome}`] = (tally[`${short(m.path)} ${outcome}`] ?? 0) + 1;
        if ('refused' in r) {
          assert.equal(r.refused.code, 'MALFORMED_REQUEST', what);
          continue;
        }
        let expected: unknown;
        assert.doesNotThrow(() => (expected = byReference(m.path, bytes)), what);
        // A Write policy sent twice is merged (protobuf's rule); protobufjs keeps the last one.
        if ('value' in r && !(short(m.path) === 'Write' && countTopLevel(bytes, 0x12) > 1)) assert.deepStrictEqual(r.value, expected, what);
      }
    }
    process.stdout.write(`# strict decoding fuzz (seed ${FUZZ_SEED}): ${JSON.stringify(tally)}\n`);
    for (const m of METHODS) {
      assert.ok((tally[`${short(m.path)} refused`] ?? 0) > 100, `${short(m.path)}: refusals tried`);
      assert.ok((tally[`${short(m.path)} accepted`] ?? 0) > 100, `${short(m.path)}: acceptances tried`);
    }
  });

  it('checks other packages\' services too (health), then leaves the decoding to their own deserializer', () => {
    const check = hardenService(healthService).Check.requestDeserialize;
    assert.deepEqual(check(Buffer.from('0a0161', 'hex')), healthService.Check.requestDeserialize(Buffer.from('0a0161', 'hex')));
    for (const hex of ['0801', '0a05616263', '0a02c328', '0b']) {
      const out = check(Buffer.from(hex, 'hex'));
      assert.ok(out instanceof RefusedRequest && out.error.code === 'MALFORMED_REQUEST', hex);
    }
  });
});
