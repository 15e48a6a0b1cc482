import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { dataKey, LOG_PREFIX_END, LOG_PREFIX_START, seqOfLogKey } from '../../src/storage/layout.js';
import type { Store } from '../../src/storage/level-store.js';
import { openMasterStore } from '../../src/storage/level-master-store.js';
import { GroupCommitter, type CommitResult } from '../../src/master/group-commit.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
const put = (k: string, v: string): Mutation => ({ kind: MutationKind.PUT, key: Buffer.from(k), value: Buffer.from(v) });

/** One LevelDB batch as the committer wrote it. */
interface BatchRecord {
  /** The options its write() got (undefined: none). */
  sync: boolean | undefined;
  /** Log chunk keys it put, as the last seq each chunk holds. */
  chunkSeqs: bigint[];
  /** Data keys it put or deleted. */
  dataOps: number;
}

const isLogKey = (key: Buffer) => key.compare(LOG_PREFIX_START) >= 0 && key.compare(LOG_PREFIX_END) < 0;

/**
 * Records every LevelDB batch written to the store, whichever of classic-level's two
 * ways reaches the native write:
 * - a chained batch, db.batch() with no arguments: counted when its write() is called;
 * - the array form: db.batch(ops, options) (abstract-level, which ends in db._batch) or
 *   db._batch(ops, options) called directly (what store.ts's writeBatch may do to skip
 *   abstract-level's per-operation cloning): counted in _batch.
 * Each batch is one native write and one fsync when sync is set, so this counts LevelDB
 * batches exactly, however the write path builds them; the test also checks the result
 * against the log chunks on disk, which do not depend on how they were written.
 */
function recordBatches(db: Store): BatchRecord[] {
  const records: BatchRecord[] = [];
  const note = (rec: BatchRecord, key: Buffer) => {
    if (isLogKey(key)) rec.chunkSeqs.push(seqOfLogKey(key));
    else rec.dataOps++;
  };
  const internal = db as unknown as {
    batch: (...args: unknown[]) => unknown;
    _batch: (ops: { key: Buffer }[], options?: { sync?: boolean }) => Promise<void>;
  };
  const originalArray = internal._batch.bind(db);
  internal._batch = (ops, options) => {
    const rec: BatchRecord = { sync: options?.sync, chunkSeqs: [], dataOps: 0 };
    for (const op of ops) note(rec, op.key);
    records.push(rec);
    return originalArray(ops, options);
  };
  const originalBatch = internal.batch.bind(db);
  internal.batch = (...args: unknown[]): unknown => {
    if (args.length > 0) return originalBatch(...args); // the array form: recorded in _batch
    const batch = originalBatch() as ReturnType<Store['batch']>;
    const rec: BatchRecord = { sync: undefined, chunkSeqs: [], dataOps: 0 };
    const origPut = batch.put.bind(batch);
    const origDel = batch.del.bind(batch);
    const origWrite = batch.write.bind(batch) as (options?: { sync?: boolean }) => Promise<void>;
    batch.put = ((key: Buffer, value: Buffer) => {
      note(rec, key);
      return origPut(key, value);
    }) as typeof batch.put;
    batch.del = ((key: Buffer) => {
      note(rec, key);
      return origDel(key);
    }) as typeof batch.del;
    batch.write = ((options?: { sync?: boolean }) => {
      rec.sync = options?.sync;
      records.push(rec);
      return origWrite(options);
    }) as typeof batch.write;
    return batch;
  };
  return records;
}

async function openMaster(opts: { sync: boolean; maxGroupEntries?: number }) {
  const store = await openMasterStore(path.join(tempDir(), 'm'), { create: true });
  const { db, log: wal } = store;
  const batches = recordBatches(db);
  const committer = new GroupCommitter(store, { sync: opts.sync, maxGroupEntries: opts.maxGroupEntries ?? 10_000, maxGroupBytes: 1 << 24 }, log, () => {});
  return { db, wal, committer, batches };
}

/** Request i carries 1 + i % 3 writes, so requests of different sizes share groups. */
const writesOf = (i: number) => Array.from({ length: 1 + (i % 3) }, (_, j) => [put(`k${i}-${j}`, `v${i}-${j}`)]);

/** Asserts the results, in submission order, hold consecutive seqs 1..total with no gap or overlap. */
function assertConsecutive(results: CommitResult[], sizes: number[]): bigint {
  let next = 1n;
  for (const [i, r] of results.entries()) {
    assert.equal(r.firstSeq, next, `request ${i} starts right after request ${i - 1}`);
    assert.equal(r.lastSeq - r.firstSeq + 1n, BigInt(sizes[i]), `request ${i} gets one seq per write`);
    next = r.lastSeq + 1n;
  }
  return next - 1n;
}

describe('group commit', () => {
  it('50 concurrent requests are committed in far fewer LevelDB batches, with consecutive gap-free seqs', async () => {
    const { db, wal, committer, batches } = await openMaster({ sync: false });
    const N = 50;
    const sizes = Array.from({ length: N }, (_, i) => writesOf(i).length);
    // All 50 are submitted in the same tick, before any batch write can finish.
    const results = await Promise.all(Array.from({ length: N }, (_, i) => committer.submit(writesOf(i), 64)));
    const total = assertConsecutive(results, sizes);
    assert.equal(total, BigInt(sizes.reduce((a, b) => a + b, 0)));
    assert.equal(wal.lastSeq, total);

    // The first request starts a group on its own (nothing else is queued yet); every
    // other one queues behind that batch's write and goes into the next group. One batch
    // per request (50) would mean no group commit at all.
    assert.ok(batches.length >= 1 && batches.length <= 2, `50 concurrent requests took ${batches.length} LevelDB batches`);
    // Every batch holds its group's data and log chunks together (one atomic write), and
    // the batches' chunks cover the seqs in order: the last batch ends at the last seq.
    assert.equal(batches.reduce((n, b) => n + b.dataOps, 0), Number(total), 'one data put per write');
    const chunkEnds = batches.flatMap((b) => b.chunkSeqs);
    assert.ok(batches.every((b) => b.chunkSeqs.length > 0 && b.dataOps > 0), 'no batch without both data and log');
    assert.deepEqual([...chunkEnds].sort((a, b) => (a < b ? -1 : 1)), chunkEnds, 'chunks are written in seq order');
    assert.equal(chunkEnds.at(-1), total);
    // The batches are what is on disk: the stored chunks are exactly the recorded ones.
    const stored = (await db.keys({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END }).all()).map(seqOfLogKey);
    assert.deepEqual(stored, chunkEnds);
    assert.equal((await db.get(dataKey(0, Buffer.from(`k${N - 1}-0`))))?.toString(), `v${N - 1}-0`);
    await committer.close();
    await db.close();
  });

  it('a group stops at maxGroupEntries: more batches, still consecutive seqs', async () => {
    const { db, committer, batches } = await openMaster({ sync: false, maxGroupEntries: 10 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => committer.submit([[put(`k${i}`, 'v')]], 2)));
    assertConsecutive(results, results.map(() => 1));
    // The first alone, then the 49 queued ones in groups of at most 10: 1 + 5.
    assert.equal(batches.length, 6, `batches: ${batches.map((b) => b.dataOps).join(',')}`);
    assert.ok(batches.every((b) => b.dataOps <= 10));
    await committer.close();
    await db.close();
  });

  it('with sync: true each group batch is written with sync: true (one fsync per group); with sync: false it is not', async () => {
    for (const sync of [true, false]) {
      const { db, committer, batches } = await openMaster({ sync });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => committer.submit(writesOf(i), 64)));
      assertConsecutive(results, Array.from({ length: 20 }, (_, i) => writesOf(i).length));
      assert.ok(batches.length >= 1 && batches.length <= 2, `20 concurrent requests took ${batches.length} batches`);
      for (const b of batches) assert.equal(b.sync, sync, `batch write options with sync: ${sync}`);
      // A lone request afterwards is its own group, and is synced the same way.
      await committer.submit([[put('lone', 'v')]], 5);
      assert.equal(batches.at(-1)!.sync, sync);
      await committer.close();
      await db.close();
    }
  });
});
