import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SubscribeResponse, SubscribeResponse__Output } from '../../src/common/generated/levelreplicator/v1/SubscribeResponse.js';
import { replicatorProto } from '../../src/common/proto.js';
import { fastSubscribeResponseSerializer } from '../../src/master/entry-batch-serializer.js';

const method = replicatorProto().Master.service.Subscribe;
const generic = (msg: SubscribeResponse) => method.responseSerialize(msg) as Buffer;
const decode = (bytes: Buffer) => method.responseDeserialize(bytes) as SubscribeResponse__Output;
const fast = fastSubscribeResponseSerializer(generic);

describe('fast entry batch encoding', () => {
  it('encodes entry batches to the same bytes as protobufjs', () => {
    const sizes = [[0], [1, 2, 3], [127, 128, 16_383, 16_384], Array.from({ length: 1_000 }, (_, i) => 100 + (i % 7))];
    for (const lens of sizes) {
      const entries = lens.map((n, i) => Buffer.alloc(n, i % 251));
      for (const masterLastSeq of ['0', '1', '300', '18446744073709551615']) {
        const msg: SubscribeResponse = { entries: { entries, masterLastSeq } };
        const bytes = fast(msg);
        assert.ok(bytes.equals(generic(msg)), `sizes ${lens.slice(0, 4)}, seq ${masterLastSeq}`);
        assert.deepEqual(decode(bytes).entries?.entries.map((e) => e.length), lens);
        assert.equal(decode(bytes).entries?.masterLastSeq, masterLastSeq);
      }
    }
  });

  it('leaves every other message to protobufjs', () => {
    const others: SubscribeResponse[] = [
      { heartbeat: { masterLastSeq: '5', masterTimeMs: '7' } },
      { start: { historyId: Buffer.alloc(16, 1), fromSeq: '3', masterLastSeq: '9', epoch: 1 } },
      { snapshotChunk: { pairs: [{ key: Buffer.from('k'), value: Buffer.from('v') }] } },
      { entries: { entries: [Buffer.from('x')], masterLastSeq: 4 } },
    ];
    for (const msg of others) assert.ok(fast(msg).equals(generic(msg)), JSON.stringify(Object.keys(msg)));
  });
});
