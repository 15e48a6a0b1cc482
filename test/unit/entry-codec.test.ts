import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import {
  chainsFrom,
  decodeEntry,
  encodeEntry,
  entryChecksum,
  entryCommitTimeMs,
  entrySeq,
  GENESIS_CHECKSUM,
  MutationKind,
  type Mutation,
} from '../../src/wire/entry-codec.js';
import { isReplicatorError } from '../../src/common/errors.js';

const muts: Mutation[] = [
  { kind: MutationKind.PUT, key: Buffer.from('k1'), value: Buffer.from('v1') },
  { kind: MutationKind.DELETE, key: Buffer.from('k2') },
  { kind: MutationKind.PUT, key: Buffer.from([0, 255, 10]), value: Buffer.alloc(0) },
];

/** The documented format, written out plainly: what the optimised encoder must produce. */
function referenceEncode(seq: bigint, commitTimeMs: number, mutations: readonly Mutation[], prevChecksum: number): Buffer {
  const u32 = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  const u64 = (n: bigint): Buffer => Buffer.concat([u32(Number(n >> 32n)), u32(Number(n & 0xffff_ffffn))]);
  const parts: Buffer[] = [Buffer.from([1]), u64(seq), u64(BigInt(commitTimeMs)), u32(mutations.length)];
  for (const m of mutations) {
    parts.push(Buffer.from([m.kind]), u32(m.key.length), m.key);
    if (m.kind === MutationKind.PUT) parts.push(u32(m.value!.length), m.value!);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, u32(zlib.crc32(body, prevChecksum))]);
}

describe('entry codec', () => {
  it('round-trips seq, commit time and mutations', () => {
    const buf = encodeEntry(42n, 1_700_000_000_123, muts, GENESIS_CHECKSUM);
    assert.ok(buf.equals(referenceEncode(42n, 1_700_000_000_123, muts, GENESIS_CHECKSUM)));
    const e = decodeEntry(buf);
    assert.equal(e.seq, 42n);
    assert.equal(e.commitTimeMs, 1_700_000_000_123);
    assert.deepEqual(
      e.mutations.map((m) => [m.kind, m.key.toString('hex'), m.value?.toString('hex')]),
      muts.map((m) => [m.kind, m.key.toString('hex'), m.value?.toString('hex')]),
    );
    assert.equal(entrySeq(buf), 42n);
    assert.equal(entryCommitTimeMs(buf), 1_700_000_000_123);
    assert.equal(entryChecksum(buf), e.checksum);
  });

  it('writes the documented format for commit times above 2^32 ms and keys above 64 KiB', () => {
    const big: Mutation[] = [{ kind: MutationKind.PUT, key: Buffer.alloc(70_000, 7), value: Buffer.alloc(5, 1) }, muts[1]];
    const t = 2 ** 40 + 12_345;
    const buf = encodeEntry(2n ** 33n, t, big, 0xdeadbeef);
    assert.ok(buf.equals(referenceEncode(2n ** 33n, t, big, 0xdeadbeef)));
    assert.equal(entryCommitTimeMs(buf), t);
  });

  it('handles the largest seq', () => {
    assert.equal(decodeEntry(encodeEntry(2n ** 64n - 1n, 0, muts, 0)).seq, 2n ** 64n - 1n);
  });

  it('chains checksums: an entry verifies only against its predecessor', () => {
    const first = encodeEntry(1n, 1, muts, GENESIS_CHECKSUM);
    const second = encodeEntry(2n, 2, muts, entryChecksum(first));
    assert.ok(chainsFrom(first, GENESIS_CHECKSUM));
    assert.ok(chainsFrom(second, entryChecksum(first)));
    assert.ok(!chainsFrom(second, GENESIS_CHECKSUM));
    // Same content after a different history gives a different checksum.
    const other = encodeEntry(2n, 2, muts, entryChecksum(encodeEntry(1n, 1, [muts[1]], GENESIS_CHECKSUM)));
    assert.notEqual(entryChecksum(other), entryChecksum(second));
  });

  it('detects every single flipped byte, by structure or by checksum', () => {
    const buf = encodeEntry(7n, 123, muts, 99);
    for (let i = 0; i < buf.length; i++) {
      const bad = Buffer.from(buf);
      bad[i] ^= 0x01;
      let structural = false;
      try {
        decodeEntry(bad);
      } catch (err) {
        assert.ok(isReplicatorError(err, 'CORRUPT_ENTRY'));
        structural = true;
      }
      assert.ok(structural || !chainsFrom(bad, 99), `flip at byte ${i} went unnoticed`);
    }
  });

  it('refuses truncated entries and trailing bytes', () => {
    const buf = encodeEntry(7n, 123, muts, 0);
    for (let len = 0; len < buf.length; len++) {
      assert.throws(() => {
        const e = decodeEntry(buf.subarray(0, len));
        if (!chainsFrom(buf.subarray(0, len), 0)) throw new Error('checksum');
        return e;
      });
    }
    assert.throws(() => decodeEntry(Buffer.concat([buf.subarray(0, buf.length - 4), Buffer.from([0]), buf.subarray(buf.length - 4)])), /unexpected bytes/);
  });

  it('refuses absurd mutation counts before allocating', () => {
    const buf = encodeEntry(1n, 0, muts, 0);
    buf.writeUInt32BE(0xffffffff, 17);
    assert.throws(() => decodeEntry(buf), /does not fit/);
  });
});
