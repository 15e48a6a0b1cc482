import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MutationKind } from '../../src/wire/entry-codec.js';
import { dataKey, LOG_PREFIX_END, LOG_PREFIX_START, MASTER_DATA_GEN } from '../../src/storage/layout.js';
import type { Store } from '../../src/storage/level-store.js';
import { openMasterStore } from '../../src/storage/level-master-store.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { GroupCommitter } from '../../src/master/group-commit.js';
import { LogRetention, type RetentionPolicy } from '../../src/master/log-retention.js';
import { verifyLog } from '../../src/storage/log-verify.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
const POLICY: RetentionPolicy = {
  retainEntries: 10n,
  retainAgeMs: 0,
  retainBytes: 0,
  slotMaxLagEntries: 10_000_000n,
  slotMaxLagBytes: 0,
  trimIntervalMs: 1_000,
};
/** Entries per request, and so per log chunk (each request is committed as its own group). */
const CHUNK = 100;
/** Entries in the log to trim. */
const ENTRIES = 200_000;
/** "whole log chunks are deleted about 1000 entries at a time" (README); not the module's constant, which a regression could change too. */
const STEP_ENTRIES = 1_000;

/** A trim step: one LevelDB batch deleting log chunks, recorded once the write is done. */
type Event = { kind: 'trim batch'; chunksDeleted: number; ops: number } | { kind: 'commit' } | { kind: 'trim done' };

const isLogKey = (key: Buffer) => key.compare(LOG_PREFIX_START) >= 0 && key.compare(LOG_PREFIX_END) < 0;

/**
 * Records, in `events`, every LevelDB batch that deletes log chunks (only the trimmer
 * does), when its write completes, however it reaches the native write: a chained batch
 * (db.batch() then write()) or the array form (db.batch(ops) / db._batch).
 */
function recordTrimBatches(db: Store, events: Event[]): void {
  const internal = db as unknown as {
    batch: (...args: unknown[]) => unknown;
    _batch: (ops: { type: string; key: Buffer }[], options?: object) => Promise<void>;
  };
  const note = (ops: { type: string; key: Buffer }[]) => {
    const chunksDeleted = ops.filter((o) => o.type === 'del' && isLogKey(o.key)).length;
    if (chunksDeleted > 0) events.push({ kind: 'trim batch', chunksDeleted, ops: ops.length });
  };
  const originalArray = internal._batch.bind(db);
  internal._batch = async (ops, options) => {
    await originalArray(ops, options);
    note(ops);
  };
  const originalBatch = internal.batch.bind(db);
  internal.batch = (...args: unknown[]): unknown => {
    if (args.length > 0) return originalBatch(...args); // the array form: recorded in _batch
    const batch = originalBatch() as ReturnType<Store['batch']>;
    const ops: { type: string; key: Buffer }[] = [];
    const origPut = batch.put.bind(batch);
    const origDel = batch.del.bind(batch);
    const origWrite = batch.write.bind(batch) as (options?: object) => Promise<void>;
    batch.put = ((key: Buffer, value: Buffer) => {
      ops.push({ type: 'put', key });
      return origPut(key, value);
    }) as typeof batch.put;
    batch.del = ((key: Buffer) => {
      ops.push({ type: 'del', key });
      return origDel(key);
    }) as typeof batch.del;
    batch.write = (async (options?: object) => {
      await origWrite(options);
      note(ops);
    }) as typeof batch.write;
    return batch;
  };
}

/**
 * "Trimming is incremental and does not stall writes" (README, Log retention): a pass that
 * has a long log to delete does it in bounded steps, each its own small LevelDB write
 * (whole chunks, about 1000 entries), and yields between them, so writes submitted
 * meanwhile commit while the trim goes on, not after it.
 *
 * Every trim batch and every write's commit is recorded, as it completes, in one event
 * list. A trim done as one batch (or building its steps and writing them at the end)
 * shows one huge batch; a trim that held writes back (a long write, a lock shared with
 * the committer, a loop that never yields) shows the commits only after its batches, not
 * between them.
 */
describe('log trimming runs beside writes', () => {
  it('a long trim goes in bounded steps, and writes submitted meanwhile commit between them', { timeout: 120_000 }, async (t) => {
    const store = await openMasterStore(path.join(tempDir(), 'm'), { create: true });
    const { db, log: wal } = store;
    const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 10_000, maxGroupBytes: 1 << 24 }, log, () => {});
    for (let r = 0; r < ENTRIES / CHUNK; r++) {
      await committer.submit(
        Array.from({ length: CHUNK }, (_, i) => [{ kind: MutationKind.PUT, key: Buffer.from(`old-${r}-${i}`), value: Buffer.from('v'.repeat(20)) }]),
        CHUNK * 30,
      );
    }
    assert.equal(wal.lastSeq, BigInt(ENTRIES));
    const lastBefore = wal.lastSeq;

    const events: Event[] = [];
    recordTrimBatches(db, events);
    let trimDone = false;
    const trim = new LogRetention(store, new FollowerRegistry(), POLICY, log).runOnce().then(() => {
      events.push({ kind: 'trim done' });
      trimDone = true;
    });
    // One writer, one write at a time, for as long as the trim runs.
    const written: string[] = [];
    for (let n = 0; !trimDone; n++) {
      const key = `new-${n}`;
      await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(key), value: Buffer.from('w') }]], key.length + 1);
      events.push({ kind: 'commit' });
      written.push(key);
    }
    await trim;

    // The pass trimmed what it set out to: everything but the newest 10 of the entries it saw.
    assert.equal(wal.firstSeq, lastBefore - POLICY.retainEntries + 1n);
    const batches = events.filter((e) => e.kind === 'trim batch');
    const deleted = batches.reduce((n, b) => n + b.chunksDeleted, 0);
    assert.equal(deleted, ENTRIES / CHUNK - 1, 'every chunk but the last was deleted (the last is rewritten with its newest 10 entries)');
    assert.ok(batches.length >= ENTRIES / STEP_ENTRIES - 1, `the trim went in ${batches.length} batches`);
    for (const b of batches) assert.ok(b.chunksDeleted * CHUNK <= STEP_ENTRIES + CHUNK - 1, `a trim batch deleted ${b.chunksDeleted} chunks of ${CHUNK} entries`);

    // Writes committed while the trim ran, spread over it: none waited out a long run of
    // trim batches.
    const first = events.findIndex((e) => e.kind === 'trim batch');
    const done = events.findIndex((e) => e.kind === 'trim done');
    let during = 0;
    let run = 0;
    let longestRun = 0;
    let gapsWithCommit = 0;
    for (let i = first; i < done; i++) {
      if (events[i].kind === 'trim batch') {
        run++;
        longestRun = Math.max(longestRun, run);
      } else {
        during++;
        if (run > 0) gapsWithCommit++;
        run = 0;
      }
    }
    const summary = `${batches.length} trim batches, ${during} commits during the trim, ${gapsWithCommit} gaps between trim batches with a commit, longest run of trim batches with no commit between them ${longestRun}`;
    t.diagnostic(summary);
    assert.ok(during >= 50 && during >= batches.length / 4, `writes kept committing while the trim ran: ${summary}`);
    assert.ok(gapsWithCommit >= 50 && gapsWithCommit >= batches.length / 4, `commits were spread over the trim: ${summary}`);
    assert.ok(longestRun <= Math.max(10, batches.length / 10), `no write waited out a long stretch of the trim: ${summary}`);

    // The writes are all there, and the log is whole and verifiable from its new first entry.
    for (const key of written) assert.equal((await db.get(dataKey(MASTER_DATA_GEN, Buffer.from(key))))?.toString(), 'w');
    const v = await verifyLog(db);
    assert.equal(v.corrupt, undefined);
    assert.equal(v.firstSeq, wal.firstSeq);
    assert.equal(v.lastSeq, wal.lastSeq);
    assert.equal(v.lastSeq, lastBefore + BigInt(written.length));
    await committer.close();
    await db.close();
  });
});
