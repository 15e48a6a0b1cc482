import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TailCache } from '../../src/storage/tail-cache.js';

const e = (n: number, size = 10) => Buffer.alloc(size, n);

describe('tail cache', () => {
  it('serves consecutive entries from any cached seq', () => {
    const c = new TailCache(8, 1_000);
    c.append(1n, [e(1), e(2), e(3)]);
    c.append(4n, [e(4)]);
    assert.deepEqual(c.read(2n, 10, 1_000)?.map((b) => b[0]), [2, 3, 4]);
    assert.deepEqual(c.read(1n, 2, 1_000)?.map((b) => b[0]), [1, 2]);
    assert.equal(c.read(5n, 10, 1_000), undefined);
    assert.equal(c.read(0n, 10, 1_000), undefined);
  });

  it('evicts the oldest entries by count and by bytes, wrapping the ring', () => {
    const c = new TailCache(4, 35);
    for (let s = 1; s <= 10; s++) c.append(BigInt(s), [e(s)]);
    assert.equal(c.read(7n, 10, 1_000), undefined, 'bytes cap keeps at most 3 entries');
    assert.deepEqual(c.read(8n, 10, 1_000)?.map((b) => b[0]), [8, 9, 10]);
  });

  it('caps a read by bytes but always returns at least one entry', () => {
    const c = new TailCache(8, 10_000);
    c.append(1n, [e(1, 100), e(2, 100), e(3, 100)]);
    assert.equal(c.read(1n, 10, 150)?.length, 1);
    assert.equal(c.read(1n, 10, 50)?.length, 1);
    assert.equal(c.read(1n, 10, 200)?.length, 2);
  });

  it('a non-consecutive append resets rather than leaving a hole', () => {
    const c = new TailCache(8, 1_000);
    c.append(1n, [e(1), e(2)]);
    c.append(5n, [e(5)]);
    assert.equal(c.read(1n, 10, 1_000), undefined);
    assert.deepEqual(c.read(5n, 10, 1_000)?.map((b) => b[0]), [5]);
  });

  it('copies entries into its ring: the caller may reuse its buffers, get() returns a copy that outlives a wrap', () => {
    const c = new TailCache(8, 30);
    const b = e(1);
    c.append(1n, [b]);
    b.fill(9);
    assert.equal(c.read(1n, 1, 1_000)?.[0][0], 1, 'the cache kept the bytes, not the caller buffer');
    const kept = c.get(1n)!;
    for (let s = 2; s <= 6; s++) c.append(BigInt(s), [e(s)]);
    assert.equal(c.read(1n, 1, 1_000), undefined, 'seq 1 was overwritten');
    assert.deepEqual(kept, e(1), 'the copy from get() is unaffected');
  });

  it('an entry larger than the ring is not cached, and nothing before it stays', () => {
    const c = new TailCache(8, 100);
    c.append(1n, [e(1), e(2)]);
    c.append(3n, [e(3, 101), e(4)]);
    assert.equal(c.read(2n, 10, 1_000), undefined);
    assert.equal(c.read(3n, 10, 1_000), undefined);
    assert.deepEqual(c.read(4n, 10, 1_000)?.map((x) => x[0]), [4]);
    c.append(5n, [e(5)]);
    assert.deepEqual(c.read(4n, 10, 1_000)?.map((x) => x[0]), [4, 5]);
  });

  it('entries of random sizes: what it serves is always exactly what was appended, the newest entries, in at most its bytes', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    const capacity = 1_000;
    const c = new TailCache(16, capacity);
    const appended = new Map<bigint, Buffer>();
    let next = 1n;
    for (let round = 0; round < 2_000; round++) {
      const group: Buffer[] = [];
      for (let i = rand(4) + 1; i > 0; i--) {
        const b = Buffer.alloc(rand(300) + 1);
        for (let j = 0; j < b.length; j++) b[j] = rand(256);
        group.push(b);
        appended.set(next + BigInt(group.length - 1), Buffer.from(b));
      }
      if (round % 2 === 0) {
        c.append(next, group);
      } else {
        // The committer's form: the same entries as offsets into one buffer, with slack around them.
        const src = Buffer.concat([Buffer.from([1, 2, 3]), ...group.flatMap((g) => [g, Buffer.from([9])])]);
        const starts = new Uint32Array(group.length);
        const ends = new Uint32Array(group.length);
        let o = 3;
        group.forEach((g, i) => {
          starts[i] = o;
          ends[i] = o + g.length;
          o += g.length + 1;
        });
        c.appendEncoded(next, src, starts, ends);
      }
      next += BigInt(group.length);
      const last = next - 1n;
      const cached = c.read(last, 1, Infinity);
      assert.ok(cached, `the newest entry (seq ${last}, ${appended.get(last)!.length} bytes) is cached`);
      // Walk back to the oldest cached seq: everything from there on must match byte for byte.
      let oldest = last;
      while (oldest > 1n && c.read(oldest - 1n, 1, Infinity)) oldest--;
      const all = c.read(oldest, 1_000, Infinity)!;
      assert.equal(BigInt(all.length), last - oldest + 1n, 'consecutive up to the newest');
      assert.ok(all.length <= 16, 'at most maxEntries');
      assert.ok(all.reduce((n, b) => n + b.length, 0) <= capacity, 'at most capacityBytes');
      all.forEach((b, i) => assert.deepEqual(b, appended.get(oldest + BigInt(i)), `seq ${oldest + BigInt(i)} intact`));
    }
  });
});
