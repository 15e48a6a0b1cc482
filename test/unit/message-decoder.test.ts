import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { decodeMessage, planOf } from '../../src/wire/message-decoder.js';
import { LOADER_OPTIONS } from '../../src/wire/proto.js';
import { FUZZ_SEED, Rng } from '../helpers/fuzz.js';

/** A varint's bytes. */
const varint = (n: bigint): number[] => {
  const out: number[] = [];
  for (; n >= 0x80n; n >>= 7n) out.push(Number(n & 0x7fn) | 0x80);
  out.push(Number(n));
  return out;
};

/**
 * The descriptor-driven decoder (message-decoder.ts) on a message with every kind of field
 * protobuf has but maps and groups, against protobufjs (decode, then toObject with
 * proto-loader's options) as the reference; strict-decoding.test.ts covers our requests.
 */
describe('the descriptor-driven decoder on every scalar type', () => {
  const types = protobuf.parse(`
    syntax = "proto3";
    package t;
    message All {
      enum E { ZERO = 0; ONE = 1; TWO = 2; }
      double d = 1; float f = 2; int32 i32 = 3; int64 i64 = 4; uint32 u32 = 5; uint64 u64 = 6;
      sint32 s32 = 7; sint64 s64 = 8; fixed32 f32 = 9; fixed64 f64 = 10; sfixed32 sf32 = 11;
      sfixed64 sf64 = 12; bool b = 13; string s = 14; bytes by = 15; E e = 16; All child = 17;
      repeated uint32 ru = 18; repeated All kids = 19; repeated E re = 20; repeated sint64 rs = 21;
      oneof choice { string a = 22; All c = 23; }
    }`).root;
  types.resolveAll();
  const All = types.lookupType('t.All');
  const plan = planOf(All);
  const reference = (bytes: Buffer) => All.toObject(All.decode(bytes), LOADER_OPTIONS);
  const encode = (obj: Record<string, unknown>) => Buffer.from(All.encode(All.fromObject(obj)).finish());

  function randomAll(rng: Rng, depth = 0): Record<string, unknown> {
    const pick = <T>(xs: T[]) => rng.pick(xs);
    const o: Record<string, unknown> = {
      d: pick([0, -0, 1.5, -1e300, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, NaN]),
      f: pick([0, 1.5, -3.25, 3.4e38]),
      i32: pick([0, 1, -1, 2 ** 31 - 1, -(2 ** 31)]),
      i64: pick(['0', '-1', '9223372036854775807', '-9223372036854775808', '123456789012']),
      u32: pick([0, 1, 2 ** 32 - 1]),
      u64: pick(['0', '18446744073709551615', '9007199254740993']),
      s32: pick([0, -1, 1, -(2 ** 31), 2 ** 31 - 1]),
      s64: pick(['0', '-1', '1', '-9223372036854775808', '9223372036854775807']),
      f32: pick([0, 2 ** 32 - 1]),
      f64: pick(['0', '18446744073709551615']),
      sf32: pick([0, -1, -(2 ** 31)]),
      sf64: pick(['0', '-1', '-9223372036854775808']),
      b: rng.next() < 0.5,
      s: pick(['', 'x', 'caf\u00e9 \u{1f600}']),
      by: rng.bytes(rng.int(5)),
      e: pick(['ZERO', 'ONE', 'TWO', 7]),
      ru: Array.from({ length: rng.int(4) }, () => rng.int(2 ** 32)),
      re: Array.from({ length: rng.int(3) }, () => pick(['ONE', 'TWO', 9])),
      rs: Array.from({ length: rng.int(3) }, () => pick(['-5', '7', '-9223372036854775808'])),
    };
    for (const k of Object.keys(o)) if (rng.next() < 0.3) delete o[k];
    if (depth < 2 && rng.next() < 0.4) o.child = randomAll(rng, depth + 1);
    if (depth < 2 && rng.next() < 0.3) o.kids = [randomAll(rng, depth + 1), randomAll(rng, depth + 1)];
    if (rng.next() < 0.3) o.a = 'member';
    else if (depth < 2 && rng.next() < 0.3) o.c = randomAll(rng, depth + 1);
    return o;
  }

  it('decodes every type as proto-loader does (longs, enums, bytes, defaults, oneofs), packed or not', () => {
    const rng = new Rng(FUZZ_SEED + 4);
    for (let i = 0; i < 500; i++) {
      const bytes = encode(randomAll(rng));
      assert.deepStrictEqual(decodeMessage(plan, bytes), reference(bytes), `message ${i}: ${bytes.toString('hex')}`);
    }
    // Repeated scalars unpacked, and packed and unpacked mixed: protobuf takes all.
    const mixed = Buffer.from([0x90, 0x01, 0x05, 0x92, 0x01, 0x02, 0x07, 0x08, 0xa0, 0x01, 0x02]);
    assert.deepStrictEqual(decodeMessage(plan, mixed), reference(mixed));
    assert.deepEqual(decodeMessage(plan, mixed).ru, [5, 7, 8]);
  });

  it('follows protobuf where protobufjs does not: a oneof keeps its last member, a message field sent twice is merged', () => {
    const a = encode({ a: 'first' });
    const c = encode({ c: { u32: 5 } });
    const ac = decodeMessage(plan, Buffer.concat([a, c]));
    assert.equal(ac.choice, 'c');
    assert.deepStrictEqual(ac.c, decodeMessage(plan, encode({ u32: 5 })));
    assert.equal('a' in ac, false, 'the earlier member is cleared');
    const both = decodeMessage(plan, Buffer.concat([c, a]));
    assert.equal(both.choice, 'a');
    assert.equal(both.a, 'first');
    assert.equal('c' in both, false, 'the earlier member is cleared');
    const merged = decodeMessage(plan, Buffer.concat([encode({ child: { u32: 1, s: 'x', ru: [1] } }), encode({ child: { u64: '2', ru: [2] } })])).child as Record<string, unknown>;
    assert.deepEqual([merged.u32, merged.s, merged.u64, merged.ru], [1, 'x', '2', [1, 2]]);
  });

  it('refuses strings that are not UTF-8, and messages nested too deep', () => {
    assert.throws(() => decodeMessage(plan, Buffer.from([0x72, 0x02, 0xc3, 0x28])), /a string that is not valid UTF-8/);
    let nested: number[] = [];
    for (let i = 0; i < 40; i++) nested = [0x8a, 0x01, ...varint(BigInt(nested.length)), ...nested];
    assert.throws(() => decodeMessage(plan, Buffer.from(nested)), /nested more than 32 deep/);
  });
});
