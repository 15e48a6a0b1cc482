import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SubscribeResponse, SubscribeResponse__Output } from '../../src/wire/generated/levelreplicator/v1/SubscribeResponse.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { encodeEntryBatchResponse, encodeSnapshotRows, fastSubscribeResponseSerializer } from '../../src/wire/subscribe-encoder.js';

const method = replicatorProto().Master.service.Subscribe;
const generic = (msg: SubscribeResponse) => method.responseSerialize(msg) as Buffer;
const decode = (bytes: Buffer) => method.responseDeserialize(bytes) as SubscribeResponse__Output;
const fast = fastSubscribeResponseSerializer(generic);

describe('fast stream encoding', () => {
  it('encodes entry batches to the same bytes as protobufjs', () => {
    const sizes = [[0], [1, 2, 3], [127, 128, 16_383, 16_384], Array.from({ length: 1_000 }, (_, i) => 100 + (i % 7))];
    for (const lens of sizes) {
      const entries = lens.map((n, i) => Buffer.alloc(n, i % 251));
      for (const masterLastSeq of ['0', '1', '300', '18446744073709551615']) {
        const msg: SubscribeResponse = { entries: { entries, masterLastSeq } };
        const bytes = encodeEntryBatchResponse(entries, BigInt(masterLastSeq));
        assert.ok(bytes.equals(generic(msg)), `sizes ${lens.slice(0, 4)}, seq ${masterLastSeq}`);
        assert.deepEqual(decode(bytes).entries?.entries.map((e) => e.length), lens);
        assert.equal(decode(bytes).entries?.masterLastSeq, masterLastSeq);
      }
    }
  });

  it('encodes snapshot rows (store keys without their prefix) to the same bytes as protobufjs, and passes them through', () => {
    for (const n of [1, 3, 1_000]) {
      const pairs = Array.from({ length: n }, (_, i) => ({ key: Buffer.alloc(1 + (i % 200), i % 251), value: Buffer.alloc(i % 3 === 0 ? 0 : 100 + i * 37, 7) }));
      const rows = pairs.map(({ key, value }) => [Buffer.concat([Buffer.from([2, 0, 0, 0, 9]), key]), value] as const);
      const seen: string[] = [];
      const encoded = encodeSnapshotRows(rows, 5, (src, start, end, v) => seen.push(`${src.subarray(start, end).toString('hex')}=${v.length}`));
      const msg: SubscribeResponse = { snapshotChunk: { pairs } };
      assert.ok(encoded.bytes.equals(generic(msg)), `${n} pairs`);
      assert.equal(encoded.payloadBytes, pairs.reduce((t, p) => t + p.key.length + p.value.length, 0));
      assert.deepEqual(seen, pairs.map((p) => `${p.key.toString('hex')}=${p.value.length}`), 'every pair is seen once, in order, without its prefix');
      assert.equal(fast(encoded), encoded.bytes, 'the serializer passes encoded bytes through');
    }
  });

  it('encodes text keys (as a SnapshotReader returns them) to the same bytes as Buffer keys', () => {
    const texts = ['k', 'caf\u00e9', '\u{1f600}\u4e2d', '\u0000nul', 'x'.repeat(300)];
    for (const valueLength of [0, 1, 200]) {
      const value = Buffer.alloc(valueLength, 3);
      const prefix = '\u0002\u0000\u0000\u0000\u0000';
      const textRows = texts.map((t) => [prefix + t, value] as const);
      const bufferRows = texts.map((t) => [Buffer.from(prefix + t, 'utf8'), value] as const);
      const seen: string[] = [];
      const fromText = encodeSnapshotRows(textRows, 5, (src, start, end) => seen.push(src.subarray(start, end).toString('utf8')));
      const fromBuffers = encodeSnapshotRows(bufferRows, 5, () => undefined);
      assert.ok(fromText.bytes.equals(fromBuffers.bytes), `value of ${valueLength} bytes`);
      assert.equal(fromText.payloadBytes, fromBuffers.payloadBytes);
      assert.deepEqual(seen, texts);
      assert.deepEqual(decode(fromText.bytes).snapshotChunk?.pairs.map((p) => Buffer.from(p.key).toString('utf8')), texts);
    }
  });

  it('leaves every other message to protobufjs', () => {
    const others: SubscribeResponse[] = [
      { heartbeat: { masterLastSeq: '5', masterTimeMs: '7' } },
      { start: { historyId: Buffer.alloc(16, 1), fromSeq: '3', masterLastSeq: '9', epoch: 1 } },
      { snapshotEnd: { keys: '3', digest: 'ab' } },
      { snapshotChunk: { pairs: [{ key: new Uint8Array([1, 2]), value: Buffer.from('v') }] } },
      { snapshotChunk: { pairs: [{ key: Buffer.from('k'), value: Buffer.from('v') }] } },
      { entries: { entries: [Buffer.from('x')], masterLastSeq: 4 } },
    ];
    for (const msg of others) assert.ok(fast(msg).equals(generic(msg)), JSON.stringify(Object.keys(msg)));
  });
});
