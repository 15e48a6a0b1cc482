import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestData, PairHasher } from '../../src/storage/digest.js';
import { DATA_KEY_PREFIX_BYTES, dataKey, dataRange } from '../../src/storage/layout.js';
import { openStore, type Store } from '../../src/storage/level-store.js';
import { SnapshotReader } from '../../src/storage/snapshot-reader.js';
import { encodeSnapshotRows } from '../../src/wire/subscribe-encoder.js';
import { tempDir } from '../helpers/processes.js';

const GEN = 0;

/** Keys that are not valid UTF-8, or are but are easy to get wrong. */
const AWKWARD_KEYS = [
  Buffer.from([0xff]), // never valid in UTF-8
  Buffer.from([0xc0, 0x80]), // overlong NUL
  Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate (CESU-8)
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), // past U+10FFFF
  Buffer.from([0x61, 0xe2, 0x82]), // truncated sequence
  Buffer.from('k\ufffdreal replacement char', 'utf8'), // valid, but looks like a failed decode
];
const TEXT_KEYS = [Buffer.from('plain'), Buffer.from('caf\u00e9 \u{1f600} \u4e2d'), Buffer.from([0x00, 0x01, 0x7f]), Buffer.from('\ufeffbom')];

async function storeWith(keys: Buffer[]): Promise<Store> {
  const db = await openStore(tempDir('snapshot-reader'), { create: true });
  const batch = db.batch();
  keys.forEach((k, i) => batch.put(dataKey(GEN, k), Buffer.from(`value-${i}`)));
  // A neighbour generation must not leak into the range.
  batch.put(dataKey(GEN + 1, Buffer.from('other gen')), Buffer.from('x'));
  await batch.write();
  return db;
}

/** Everything the snapshot would send, decoded back to bytes via the chunk encoder. */
async function readAll(db: Store, pairs: number): Promise<{ pairs: string[]; digest: string }> {
  const snapshot = db.snapshot();
  const reader = new SnapshotReader(db, snapshot, dataRange(GEN), pairs, 1024 * 1024);
  const hash = new PairHasher();
  const out: string[] = [];
  try {
    for (;;) {
      const rows = await reader.next();
      if (rows.length === 0) break;
      encodeSnapshotRows(rows, DATA_KEY_PREFIX_BYTES, (src, start, end, value) => {
        out.push(`${src.subarray(start, end).toString('hex')}=${value.toString()}`);
        hash.update(src, value, start, end);
      });
    }
  } finally {
    await reader.close();
    await snapshot.close();
  }
  return { pairs: out, digest: hash.digest() };
}

/** The store digest (Digest RPC, store-digest), which reads through a SnapshotReader too. */
async function storeDigest(db: Store): Promise<string> {
  const snapshot = db.snapshot();
  try {
    return (await digestData(db, snapshot, GEN)).digest;
  } finally {
    await snapshot.close();
  }
}

/** The reference: a plain Buffer-keyed scan. */
async function expected(db: Store): Promise<{ pairs: string[]; digest: string }> {
  const hash = new PairHasher();
  const out: string[] = [];
  for await (const [k, v] of db.iterator(dataRange(GEN))) {
    out.push(`${k.subarray(DATA_KEY_PREFIX_BYTES).toString('hex')}=${v.toString()}`);
    hash.update(k, v, DATA_KEY_PREFIX_BYTES);
  }
  return { pairs: out, digest: hash.digest() };
}

describe('snapshot reader', () => {
  it('reads text keys exactly (multi-byte characters, NUL, a BOM)', async () => {
    const db = await storeWith(TEXT_KEYS);
    try {
      for (const pairs of [1, 2, 100]) assert.deepEqual(await readAll(db, pairs), await expected(db), `${pairs} pairs per read`);
      assert.equal(await storeDigest(db), (await expected(db)).digest);
    } finally {
      await db.close();
    }
  });

  for (const bad of AWKWARD_KEYS) {
    it(`switches to bytes, losing and repeating nothing, at key ${bad.toString('hex')}`, async () => {
      // The awkward key sorts in the middle, at the start and at the end of the range.
      for (const keys of [[Buffer.from('a1'), Buffer.from('a2'), bad, Buffer.from('\u00ff-after'), Buffer.from('\u00ff-z')], [bad, Buffer.from('\u00ff')], [Buffer.from('a'), bad]]) {
        const db = await storeWith([...keys, ...TEXT_KEYS]);
        try {
          const want = await expected(db);
          assert.equal(want.pairs.length, keys.length + TEXT_KEYS.length);
          for (const pairs of [1, 2, 3, 1000]) assert.deepEqual(await readAll(db, pairs), want, `${pairs} pairs per read`);
          assert.equal(await storeDigest(db), want.digest, 'the store digest');
        } finally {
          await db.close();
        }
      }
    });
  }

  it('a read that fails while the caller is busy is thrown by next(), never left an unhandled rejection', async () => {
    const failing = {
      iterator: () => ({ nextv: () => Promise.reject(new Error('simulated read failure')), close: async () => undefined }),
    } as unknown as Store;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const reader = new SnapshotReader(failing, {} as ReturnType<Store['snapshot']>, dataRange(GEN), 10, 1024);
      // The caller is busy for a few turns of the event loop (sending the previous batch);
      // Node reports unhandled rejections at the end of each turn.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
      await assert.rejects(reader.next(), /simulated read failure/);
      await reader.close();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('reads an empty range', async () => {
    const db = await storeWith([]);
    try {
      assert.deepEqual(await readAll(db, 10), { pairs: [], digest: new PairHasher().digest() });
    } finally {
      await db.close();
    }
  });
});
