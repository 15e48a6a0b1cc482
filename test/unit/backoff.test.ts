import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, BACKOFF_JITTER, BACKOFF_MULTIPLIER } from '../../src/common/backoff.js';

describe('backoff', () => {
  it('grows by the multiplier up to the cap, within the jitter band', () => {
    let r = 0;
    const rand = () => [0, 1, 0.5][r++ % 3];
    const b = new Backoff(100, 1_000, rand);
    let base = 100;
    for (let i = 0; i < 12; i++) {
      const d = b.next();
      assert.ok(d >= Math.floor(base * (1 - BACKOFF_JITTER)) && d <= Math.min(1_000, Math.ceil(base * (1 + BACKOFF_JITTER))), `attempt ${i}: ${d} vs base ${base}`);
      base = Math.min(1_000, base * BACKOFF_MULTIPLIER);
    }
    assert.ok(b.next() <= 1_000);
  });

  it('resets after success', () => {
    const b = new Backoff(100, 10_000, () => 0.5);
    for (let i = 0; i < 5; i++) b.next();
    b.reset();
    assert.equal(b.next(), 100);
  });
});
