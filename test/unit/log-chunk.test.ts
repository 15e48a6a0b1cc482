import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chainsFrom, encodeEntry, entryChecksum, MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { isReplicatorError } from '../../src/common/errors.js';
import type { EntryBatch__Output } from '../../src/wire/generated/levelreplicator/v1/EntryBatch.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { ChunkFramingError, chunkOf, encodeChunks, MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES, splitChunk, type EncodedChunks } from '../../src/storage/log-chunk.js';
import { prepareWrites } from '../../src/wire/prepared-writes.js';

/** The encoded entries as views, entry i = buf[starts[i], ends[i]). */
const entryViews = ({ buf, starts, ends }: EncodedChunks): Buffer[] => Array.from(starts, (start, i) => buf.subarray(start, ends[i]));
const put = (k: string, v: string): Mutation => ({ kind: MutationKind.PUT, key: Buffer.from(k), value: Buffer.from(v) });
const writes: Mutation[][] = [[put('a', '1')], [put('b', 'x'.repeat(300)), { kind: MutationKind.DELETE, key: Buffer.from('a') }], [put('c', '')]];
/** Two requests, as a group commit gets them. */
const requests = [prepareWrites(writes.slice(0, 2), 0), prepareWrites(writes.slice(2), 0)];

describe('log chunks', () => {
  it('hold the entries of a group (several requests), each exactly as encodeEntry writes it, checksums chained', () => {
    const encoded = encodeChunks(41n, 1_700_000_000_000, requests, 0x1234);
    const { chunks, lastChecksum } = encoded;
    const entries = entryViews(encoded);
    assert.equal(chunks.length, 1);
    const chunk = chunks[0].bytes;
    assert.equal(chunks[0].lastSeq, 43n);
    let prev = 0x1234;
    for (const [i, e] of entries.entries()) {
      assert.ok(e.equals(encodeEntry(41n + BigInt(i), 1_700_000_000_000, writes[i], prev)), `entry ${i}`);
      assert.ok(chainsFrom(e, prev));
      assert.equal(e.buffer, chunk.buffer, 'a view into the one chunk buffer');
      prev = entryChecksum(e);
    }
    assert.equal(lastChecksum, prev);
    assert.deepEqual(splitChunk(chunk).map((e) => e.toString('hex')), entries.map((e) => e.toString('hex')));
    assert.ok(chunkOf(entries).equals(chunk));
  });

  it('encode into the caller scratch buffer when the group fits, identical bytes; a larger group gets its own', () => {
    const fresh = encodeChunks(41n, 7, requests, 9);
    const scratch = Buffer.alloc(64 * 1024, 0xee);
    const reused = encodeChunks(41n, 7, requests, 9, scratch);
    assert.equal(reused.chunks[0].bytes.buffer, scratch.buffer, 'written into scratch');
    assert.ok(reused.chunks[0].bytes.equals(fresh.chunks[0].bytes));
    assert.equal(reused.lastChecksum, fresh.lastChecksum);
    const tiny = Buffer.alloc(16);
    const own = encodeChunks(41n, 7, requests, 9, tiny);
    assert.notEqual(own.chunks[0].bytes.buffer, tiny.buffer, 'too small: not used');
    assert.ok(own.chunks[0].bytes.equals(fresh.chunks[0].bytes));
    assert.ok(tiny.equals(Buffer.alloc(16)), 'and left untouched');
  });

  it('are byte for byte the protobuf encoding of EntryBatch.entries', () => {
    const encoded = encodeChunks(1n, 5, requests, 0);
    const { chunks } = encoded;
    const entries = entryViews(encoded);
    const chunk = chunks[0].bytes;
    assert.deepEqual(decodeEntryBatch(chunk).entries.map((e) => e.toString('hex')), entries.map((e) => e.toString('hex')));
  });

  it('split a large group into chunks of at most MAX_CHUNK_ENTRIES entries and MAX_CHUNK_BYTES, each under its last seq', () => {
    const many = prepareWrites(Array.from({ length: 2_500 }, (_, i) => [put(`k${i}`, 'v')]), 0);
    const big = prepareWrites(Array.from({ length: 5 }, (_, i) => [put(`b${i}`, 'x'.repeat(400_000))]), 0);
    const encoded = encodeChunks(1n, 5, [many, big], 0);
    const { chunks } = encoded;
    const entries = entryViews(encoded);
    assert.deepEqual(
      chunks.map((c) => c.lastSeq),
      [1_000n, 2_000n, 2_502n, 2_504n, 2_505n], // 500 small entries and two of 400 KB fit in 1 MiB; a third does not
    );
    let seq = 1;
    for (const c of chunks) {
      const inChunk = splitChunk(c.bytes);
      assert.ok(inChunk.length <= MAX_CHUNK_ENTRIES && c.bytes.length <= MAX_CHUNK_BYTES);
      for (const e of inChunk) assert.ok(e.equals(entries[seq++ - 1]));
    }
    assert.equal(seq - 1, entries.length);
  });

  it('refuse broken framing, keeping the entries before the break', () => {
    const encoded = encodeChunks(1n, 5, requests, 0);
    const { chunks } = encoded;
    const entries = entryViews(encoded);
    const chunk = chunks[0].bytes;
    const cut = chunk.subarray(0, chunk.length - 3);
    assert.throws(
      () => splitChunk(cut),
      (err) => err instanceof ChunkFramingError && isReplicatorError(err, 'CORRUPT_ENTRY') && err.intact.length === entries.length - 1,
    );
    const badTag = Buffer.from(chunk);
    badTag[0] = 0x12;
    assert.throws(() => splitChunk(badTag), (err) => err instanceof ChunkFramingError && err.intact.length === 0);
    assert.throws(() => splitChunk(Buffer.alloc(0)), ChunkFramingError);
  });
});

/** Decodes bytes as an EntryBatch with the project's proto-loader settings. */
function decodeEntryBatch(bytes: Buffer): EntryBatch__Output {
  const subscribe = replicatorProto().Master.service.Subscribe;
  // A SubscribeResponse whose body is field 1 (entries): tag 0x0a, length, then the batch.
  const len: number[] = [];
  for (let n = bytes.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  const msg = subscribe.responseDeserialize(Buffer.concat([Buffer.from([0x0a, ...len]), bytes])) as { entries: EntryBatch__Output };
  return msg.entries;
}
