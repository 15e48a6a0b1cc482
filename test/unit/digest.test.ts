import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { PairHasher } from '../../src/storage/digest.js';

/** The documented framing, hashed plainly: sha256 over u32 key length, key, u32 value length, value. */
function reference(pairs: [Buffer, Buffer][]): string {
  const h = crypto.createHash('sha256');
  for (const [k, v] of pairs) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(k.length);
    h.update(len).update(k);
    len.writeUInt32BE(v.length);
    h.update(len).update(v);
  }
  return h.digest('hex');
}

describe('store digest framing', () => {
  it('matches the plain framing for small pairs, pairs that straddle its buffer, and pairs larger than it', () => {
    const sizes = [0, 1, 100, 30_000, 65_520, 65_536, 70_000, 200_000];
    const pairs: [Buffer, Buffer][] = [];
    for (let i = 0; i < 300; i++) {
      const v = i % 37 === 0 ? sizes[i % sizes.length] : (i * 7) % 300;
      pairs.push([crypto.randomBytes(1 + (i % 20)), crypto.randomBytes(v)]);
    }
    const h = new PairHasher();
    for (const [k, v] of pairs) h.update(k, v);
    assert.equal(h.digest(), reference(pairs));
    assert.equal(new PairHasher().digest(), reference([]));
    // keyStart: the same digest from store keys, their 5-byte prefix skipped.
    const prefixed = new PairHasher();
    for (const [k, v] of pairs) prefixed.update(Buffer.concat([Buffer.from([2, 0, 0, 0, 1]), k]), v, 5);
    assert.equal(prefixed.digest(), reference(pairs));
    // keyStart and keyEnd: the same digest from keys picked out of a larger buffer.
    const framed = new PairHasher();
    for (const [k, v] of pairs) framed.update(Buffer.concat([Buffer.from([9, 9]), k, Buffer.from([7, 7, 7])]), v, 2, 2 + k.length);
    assert.equal(framed.digest(), reference(pairs));
    // updateText: keys read as text (valid UTF-8, multi-byte too), with and without a prefix.
    const text = (i: number) => `k${i}-\u00e9\u{1f600}`.repeat(1 + (i % 5));
    const textPairs: [Buffer, Buffer][] = pairs.map(([, v], i) => [Buffer.from(text(i), 'utf8'), v]);
    const fromText = new PairHasher();
    const fromPrefixedText = new PairHasher();
    textPairs.forEach(([, v], i) => {
      fromText.updateText(text(i), v);
      fromPrefixedText.updateText('\u0002\u0000\u0000\u0000\u0001' + text(i), v, 5);
    });
    assert.equal(fromText.digest(), reference(textPairs));
    assert.equal(fromPrefixedText.digest(), reference(textPairs));
  });
});
