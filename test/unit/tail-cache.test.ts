import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TailCache } from '../../src/master/tail-cache.js';

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
});
