import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { encodeEntry, entryChecksum, GENESIS_CHECKSUM, MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { dataKey } from '../../src/storage/layout.js';
import { openStore, type Store } from '../../src/storage/level-store.js';
import { ApplyAudit } from '../../src/follower/apply-audit.js';
import { Applier } from '../../src/follower/applier.js';
import { checkAudit } from '../helpers/oracles.js';
import { tempDir } from '../helpers/processes.js';

/**
 * A follower's own store failure (contract 15) without a full disk: the store's real
 * LevelDB batch write is made to fail once, below the applier (store.ts writeBatch ->
 * db.batch().write()), so everything above it — Applier.write, the reopen, the position
 * read back — runs as in production. Fault scenario 7 does this for real on a tmpfs, but
 * needs mount rights and is skipped without them.
 */

const HISTORY = crypto.randomBytes(16);

/** Entries 1..count of one history, chained from genesis: seq n puts k<n> = v<n> and deletes k<n-2>. */
function makeLog(count: number): Buffer[] {
  const entries: Buffer[] = [];
  let prev = GENESIS_CHECKSUM;
  for (let seq = 1; seq <= count; seq++) {
    const mutations: Mutation[] = [{ kind: MutationKind.PUT, key: Buffer.from(`k${seq}`), value: Buffer.from(`v${seq}`) }];
    if (seq > 2) mutations.push({ kind: MutationKind.DELETE, key: Buffer.from(`k${seq - 2}`) });
    const e = encodeEntry(BigInt(seq), 1_700_000_000_000 + seq, mutations, prev);
    entries.push(e);
    prev = entryChecksum(e);
  }
  return entries;
}
/** Entries from..to (1-based, inclusive) of a log. */
const seqs = (log: Buffer[], from: number, to: number) => log.slice(from - 1, to);

/** What applying seqs 1..n leaves in the store: k<n-1> and k<n> (each seq deletes the key two back). */
function expectedData(n: number): Map<string, string> {
  const m = new Map<string, string>();
  for (let s = Math.max(1, n - 1); s <= n; s++) m.set(`k${s}`, `v${s}`);
  return m;
}

type Event = 'write' | 'write-failed' | 'close' | 'open' | 'open-failed';
interface ChainedBatch {
  write(options?: object): Promise<void>;
  close(): Promise<void>;
}

/**
 * Instruments a store: records every batch write, close and open, and lets a test make
 * the next batch write fail — either writing nothing, or after the batch reached the store
 * (as when the write-ahead log append succeeded and its fsync failed) — and the next open fail.
 */
function instrument(db: Store) {
  const events: Event[] = [];
  const store = db as unknown as { batch(): ChainedBatch; open(): Promise<void>; close(): Promise<void> };
  let failWrite: 'nothing-written' | 'written' | undefined;
  let failOpen = false;
  const batch = store.batch.bind(db);
  const open = store.open.bind(db);
  const close = store.close.bind(db);
  store.batch = () => {
    const b = batch();
    const write = b.write.bind(b);
    b.write = async (options) => {
      const mode = failWrite;
      failWrite = undefined;
      if (mode === undefined) {
        await write(options);
        events.push('write');
        return;
      }
      if (mode === 'written') await write(options);
      else await b.close();
      events.push('write-failed');
      throw new Error('IO error: simulated failure of the store write');
    };
    return b;
  };
  store.open = async () => {
    if (failOpen) {
      failOpen = false;
      events.push('open-failed');
      throw new Error('simulated open failure');
    }
    await open();
    events.push('open');
  };
  store.close = async () => {
    await close();
    events.push('close');
  };
  return {
    events,
    failNextWrite(mode: 'nothing-written' | 'written') {
      failWrite = mode;
    },
    failNextOpen() {
      failOpen = true;
    },
  };
}

async function setup() {
  const dir = path.join(tempDir('lr-applier-failure-'), 'follower');
  const db = await openStore(dir, { create: true });
  const auditFile = path.join(dir, 'audit');
  const audit = ApplyAudit.open(auditFile);
  const applier = await Applier.open(db, { sync: true, audit });
  audit.opened(applier.appliedSeq); // as follower-node does after opening
  const probe = instrument(db);
  const log = makeLog(10);
  return { dir, db, audit, auditFile, applier, probe, log };
}

async function readData(db: Store): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (let s = 1; s <= 10; s++) {
    const v = await db.get(dataKey(0, Buffer.from(`k${s}`)));
    if (v) m.set(`k${s}`, v.toString());
  }
  return m;
}

/** Closes everything, opens the store afresh (as a restarted follower would) and returns what it holds. */
async function reopenFresh(ctx: Awaited<ReturnType<typeof setup>>) {
  ctx.audit.close();
  await ctx.db.close();
  const db = await openStore(ctx.dir, { create: false });
  try {
    const applier = await Applier.open(db, { sync: true });
    return { appliedSeq: applier.appliedSeq, appliedChecksum: applier.appliedChecksum, data: await readData(db) };
  } finally {
    await db.close();
  }
}

/**
 * The end state every case must reach: the audit shows exactly `expectedAudit` and passes
 * the oracle (no seq applied twice, none skipped up to lastSeq), and the store, reopened
 * afresh, holds seqs 1..lastSeq and nothing else. Returns what the reopened store holds.
 */
async function assertDurableEnd(ctx: Awaited<ReturnType<typeof setup>>, expectedAudit: string, lastSeq: number) {
  const audit = fs.readFileSync(ctx.auditFile, 'utf8');
  assert.equal(audit, expectedAudit);
  assert.deepEqual(checkAudit(audit, BigInt(lastSeq)), []);
  const fresh = await reopenFresh(ctx);
  assert.equal(fresh.appliedSeq, BigInt(lastSeq));
  assert.deepEqual(fresh.data, expectedData(lastSeq));
  return fresh;
}

const storeFailed = (re: RegExp) => (err: unknown) => isReplicatorError(err, ErrorCode.STORE_FAILED) && re.test((err as Error).message);

describe('follower applier: a failed store write loses nothing and applies nothing twice (contract 15)', () => {
  it('a write that wrote nothing: STORE_FAILED, the store stays readable, reopens, reads seq 3 back and applies on from 4', async () => {
    const ctx = await setup();
    const { db, applier, probe, log } = ctx;
    await applier.apply(seqs(log, 1, 3), HISTORY);
    probe.failNextWrite('nothing-written');
    await assert.rejects(applier.apply(seqs(log, 4, 6), HISTORY), storeFailed(/^cannot apply seqs 4\.\.6: the store write failed: IO error: simulated/));
    // Nothing of the batch is reported applied, and the store still serves reads.
    assert.equal(applier.appliedSeq, 3n);
    assert.equal(applier.progress.position, 3n);
    assert.equal(db.status, 'open');
    assert.deepEqual(await readData(db), expectedData(3));

    // What the subscriber does before it subscribes again: reopen, then read the position back.
    const mark = probe.events.length;
    await applier.ensureWritable();
    assert.deepEqual(probe.events.slice(mark), ['close', 'open'], 'closed and reopened before anything else is written');
    assert.equal(applier.appliedSeq, 3n, 'the position read back from the store');
    assert.equal(applier.appliedChecksum, entryChecksum(log[2]));
    await applier.ensureWritable();
    assert.deepEqual(probe.events.slice(mark), ['close', 'open'], 'reopened once, not on every call');

    // The master streams from appliedSeq + 1.
    await applier.apply(seqs(log, 4, 6), HISTORY);
    await applier.apply(seqs(log, 7, 10), HISTORY);
    assert.equal(applier.appliedSeq, 10n);
    assert.deepEqual(await readData(db), expectedData(10));

    const fresh = await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 3\napply 4 6\napply 7 10\n', 10);
    assert.equal(fresh.appliedChecksum, entryChecksum(log[9]));
  });

  it('a write that failed after reaching the store, then apply() again without an explicit reopen: refused, never applied twice', async () => {
    const ctx = await setup();
    const { db, applier, probe, log } = ctx;
    await applier.apply(seqs(log, 1, 3), HISTORY);
    probe.failNextWrite('written');
    await assert.rejects(applier.apply(seqs(log, 4, 6), HISTORY), storeFailed(/^cannot apply seqs 4\.\.6: the store write failed/));
    // apply() itself reopens and reads the position back before it checks the seqs.
    await assert.rejects(applier.apply(seqs(log, 4, 6), HISTORY), (err) => isReplicatorError(err, ErrorCode.SEQ_GAP) && /expected seq 7, received seq 4/.test((err as Error).message));
    assert.equal(applier.appliedSeq, 6n);
    await applier.apply(seqs(log, 7, 10), HISTORY);
    assert.deepEqual(await readData(db), expectedData(10));
    await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 6\napply 7 10\n', 10);
  });

  it('a write that failed after reaching the store: the reopen reads seq 6 back, so 4..6 are not applied again', async () => {
    const ctx = await setup();
    const { db, applier, probe, log } = ctx;
    await applier.apply(seqs(log, 1, 3), HISTORY);
    probe.failNextWrite('written');
    await assert.rejects(applier.apply(seqs(log, 4, 6), HISTORY), storeFailed(/^cannot apply seqs 4\.\.6: the store write failed/));
    // A failed write is never reported as applied, even though it may be on disk.
    assert.equal(applier.appliedSeq, 3n);
    const waiting = applier.progress.wait(6n, 10_000);

    await applier.ensureWritable();
    assert.equal(applier.appliedSeq, 6n, 'the position is what the store holds, not what the applier last knew');
    assert.equal(applier.appliedChecksum, entryChecksum(log[5]));
    assert.equal(await waiting, true, 'a read waiting for seq 6 is released once the store is known to hold it');
    // Offered again (by a master that did not hear of them), 4..6 are refused, not applied twice.
    await assert.rejects(applier.apply(seqs(log, 4, 6), HISTORY), (err) => isReplicatorError(err, ErrorCode.SEQ_GAP) && /expected seq 7, received seq 4/.test((err as Error).message));
    await applier.apply(seqs(log, 7, 10), HISTORY);
    assert.deepEqual(await readData(db), expectedData(10));

    await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 6\napply 7 10\n', 10);
  });

  it('never writes through the failed handle: the next write reopens first', async () => {
    const ctx = await setup();
    const { applier, probe, log } = ctx;
    await applier.apply(seqs(log, 1, 2), HISTORY);
    probe.failNextWrite('nothing-written');
    await assert.rejects(applier.apply(seqs(log, 3, 4), HISTORY), storeFailed(/cannot apply seqs 3\.\.4/));
    const mark = probe.events.length;
    // A write through the applier (the next batch, a snapshot switch, a background clear)
    // closes and reopens the store before it touches it.
    await applier.apply(seqs(log, 3, 4), HISTORY);
    assert.deepEqual(probe.events.slice(mark), ['close', 'open', 'write']);
    assert.equal(applier.appliedSeq, 4n);
    assert.deepEqual(checkAudit(fs.readFileSync(ctx.auditFile, 'utf8'), 4n), []);
    const fresh = await reopenFresh(ctx);
    assert.equal(fresh.appliedSeq, 4n);
    assert.deepEqual(fresh.data, expectedData(4));
  });

  it('a reopen that fails is STORE_FAILED and is retried; nothing is written until one succeeds', async () => {
    const ctx = await setup();
    const { applier, probe, log } = ctx;
    await applier.apply(seqs(log, 1, 3), HISTORY);
    probe.failNextWrite('nothing-written');
    await assert.rejects(applier.apply(seqs(log, 4, 5), HISTORY), storeFailed(/cannot apply seqs 4\.\.5/));
    probe.failNextOpen();
    const mark = probe.events.length;
    await assert.rejects(applier.ensureWritable(), storeFailed(/^cannot reopen the store after a failed write: simulated open failure/));
    // The subscriber backs off and calls ensureWritable again.
    await applier.ensureWritable();
    assert.deepEqual(probe.events.slice(mark), ['close', 'open-failed', 'open']);
    assert.equal(applier.appliedSeq, 3n);
    await applier.apply(seqs(log, 4, 10), HISTORY);
    await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 3\napply 4 10\n', 10);
  });
});

describe('follower applier: staged batches (the next verified while the previous is written)', () => {
  it('stages after an uncommitted batch, commits in order; out of order is refused and writes nothing', async () => {
    const ctx = await setup();
    const { db, applier, probe, log } = ctx;
    await applier.apply(seqs(log, 1, 2), HISTORY);
    const a = await applier.stage(seqs(log, 3, 5), HISTORY);
    const b = await applier.stage(seqs(log, 6, 8), HISTORY, a.to);
    assert.equal(applier.appliedSeq, 2n, 'staging writes nothing and moves nothing');
    const mark = probe.events.length;
    await assert.rejects(applier.commit(b), (err) => isReplicatorError(err, ErrorCode.INTERNAL) && /staged seqs 6\.\.8 do not follow the applied seq 2/.test((err as Error).message));
    assert.deepEqual(probe.events.slice(mark), [], 'the out-of-order batch was not written');
    assert.equal(applier.appliedSeq, 2n);
    await applier.commit(a);
    const c = await applier.stage(seqs(log, 6, 8), HISTORY, a.to);
    await applier.commit(c);
    assert.equal(applier.appliedSeq, 8n);
    assert.deepEqual(await readData(db), expectedData(8));
    // Staging from a stale position is refused by the chain checks, before any write.
    await assert.rejects(applier.stage(seqs(log, 6, 8), HISTORY), (err) => isReplicatorError(err, ErrorCode.SEQ_GAP));
    await assertDurableEnd(ctx, 'open 0\napply 1 2\napply 3 5\napply 6 8\n', 8);
  });

  it('a batch staged while the previous write fails is refused (STORE_FAILED) and never written through the failed handle', async () => {
    const ctx = await setup();
    const { db, applier, probe, log } = ctx;
    await applier.apply(seqs(log, 1, 3), HISTORY);
    const a = await applier.stage(seqs(log, 4, 5), HISTORY);
    const b = await applier.stage(seqs(log, 6, 7), HISTORY, a.to);
    probe.failNextWrite('written');
    await assert.rejects(applier.commit(a), storeFailed(/cannot apply seqs 4\.\.5: the store write failed/));
    const mark = probe.events.length;
    await assert.rejects(applier.commit(b), storeFailed(/cannot apply seqs 6\.\.7: another store write failed meanwhile/));
    assert.deepEqual(probe.events.slice(mark), [], 'nothing written after the failure');
    // The retry reopens, reads 5 back (the failed batch did land) and goes on from 6.
    await applier.ensureWritable();
    assert.equal(applier.appliedSeq, 5n);
    await applier.apply(seqs(log, 6, 10), HISTORY);
    assert.deepEqual(await readData(db), expectedData(10));
    await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 5\napply 6 10\n', 10);
  });

  it('a batch staged at the applied position is refused once any other store write has failed', async () => {
    const ctx = await setup();
    const { db, applier, probe, log } = ctx;
    await applier.apply(seqs(log, 1, 3), HISTORY);
    const a = await applier.stage(seqs(log, 4, 6), HISTORY);
    probe.failNextWrite('nothing-written');
    await assert.rejects(applier.write([{ type: 'put', key: Buffer.from('other'), value: Buffer.from('x') }], { sync: false }, 'write something else'), storeFailed(/cannot write something else/));
    const mark = probe.events.length;
    await assert.rejects(applier.commit(a), storeFailed(/cannot apply seqs 4\.\.6: another store write failed meanwhile/));
    assert.deepEqual(probe.events.slice(mark), [], 'not written through the failed handle');
    await applier.apply(seqs(log, 4, 10), HISTORY);
    assert.deepEqual(probe.events.slice(mark, mark + 3), ['close', 'open', 'write'], 'reopened first');
    assert.deepEqual(await readData(db), expectedData(10));
    await reopenFresh(ctx);
  });

  it('a filled snapshot batch is refused once another store write has failed, and never written', async () => {
    const ctx = await setup();
    const { db, applier, probe } = ctx;
    const batch = applier.newBatch();
    batch.put(dataKey(7, Buffer.from('staged')), Buffer.from('x'));
    probe.failNextWrite('nothing-written');
    await assert.rejects(applier.write([{ type: 'put', key: Buffer.from('other'), value: Buffer.from('x') }], { sync: false }, 'write something else'), storeFailed(/cannot write something else/));
    const mark = probe.events.length;
    await assert.rejects(applier.writeFilledBatch(batch, { sync: false }, 'store pairs'), storeFailed(/cannot store pairs: another store write failed meanwhile/));
    assert.deepEqual(probe.events.slice(mark), [], 'not written through the failed handle');
    assert.equal(await db.get(dataKey(7, Buffer.from('staged'))), undefined);
    await reopenFresh(ctx);
  });
});
