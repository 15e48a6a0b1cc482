import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SubscribeResponse, SubscribeResponse__Output } from '../../src/wire/generated/levelreplicator/v1/SubscribeResponse.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { fastSubscribeResponseDeserializer } from '../../src/wire/subscribe-decoder.js';

const method = replicatorProto().Master.service.Subscribe;
const serialize = (msg: SubscribeResponse) => method.responseSerialize(msg) as Buffer;
const generic = (bytes: Buffer) => method.responseDeserialize(bytes) as SubscribeResponse__Output;
const fast = fastSubscribeResponseDeserializer(generic);

describe('fast stream decoding on followers', () => {
  it('decodes entry batches and snapshot chunks exactly as proto-loader does', () => {
    const messages: SubscribeResponse[] = [
      { entries: { entries: [Buffer.alloc(150, 1), Buffer.alloc(0), Buffer.alloc(20_000, 3)], masterLastSeq: '18446744073709551615' } },
      { entries: { entries: Array.from({ length: 1_000 }, (_, i) => Buffer.alloc(100 + (i % 50), i % 256)), masterLastSeq: '1000' } },
      { entries: { entries: [Buffer.from('x')] } },
      { snapshotChunk: { pairs: Array.from({ length: 500 }, (_, i) => ({ key: Buffer.alloc(1 + (i % 30), i % 256), value: Buffer.alloc(i % 7 === 0 ? 0 : 300, 9) })) } },
      { snapshotChunk: { pairs: [{ key: Buffer.from('only a key') }] } },
    ];
    for (const msg of messages) {
      const bytes = serialize(msg);
      assert.deepStrictEqual(fast(bytes), generic(bytes), JSON.stringify(Object.keys(msg)));
    }
  });

  it('leaves every other message, and malformed ones, to proto-loader', () => {
    const others: SubscribeResponse[] = [
      { heartbeat: { masterLastSeq: '5', masterTimeMs: '7' } },
      { start: { historyId: Buffer.alloc(16, 1), fromSeq: '3', masterLastSeq: '9', epoch: 1 } },
      { snapshotEnd: { keys: '3', digest: 'ab' } },
    ];
    for (const msg of others) assert.deepStrictEqual(fast(serialize(msg)), generic(serialize(msg)));
    const valid = serialize({ entries: { entries: [Buffer.alloc(10)], masterLastSeq: '2' } });
    for (const bytes of [valid.subarray(0, valid.length - 2), Buffer.concat([valid, valid]), Buffer.from([0x0a, 0x05, 0x0a, 0x09, 1])]) {
      let expected: unknown;
      let threw = false;
      try {
        expected = generic(bytes);
      } catch {
        threw = true;
      }
      if (threw) assert.throws(() => fast(bytes));
      else assert.deepStrictEqual(fast(bytes), expected);
    }
  });
});
