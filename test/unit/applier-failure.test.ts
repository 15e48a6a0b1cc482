import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { encodeEntry, entryChecksum, GENESIS_CHECKSUM, MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { dataKey } from '../../src/storage/layout.js';
import { openStore } from '../../src/storage/level-store.js';
import { openReplicaStore, type LevelReplicaStore } from '../../src/storage/level-replica-store.js';
import type { StoreFaults, StoreOperation } from '../../src/storage/store-faults.js';
import { ApplyAudit } from '../../src/follower/apply-audit.js';
import { checkAudit } from '../helpers/oracles.js';
import { tempDir } from '../helpers/processes.js';

/**
 * A follower's own store failure (contract 15) without a full disk: a real LevelDB replica
 * store's batch write is made to fail once through its failure-injection seam (StoreFaults,
 * consulted right around the LevelDB call), so everything above it — the failed-handle
 * rules, the real close and reopen of LevelDB, the position read back — runs as in
 * production. Fault scenario 7 does this for real on a tmpfs, but needs mount rights and
 * is skipped without them.
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

/**
 * The store's fault seam as a probe: records every batch write, close and open of the
 * store's LevelDB handle, and lets a test make the next batch write fail — either writing
 * nothing, or after the batch reached the store (as when the write-ahead log append
 * succeeded and its fsync failed) — and the next open fail.
 */
function probe() {
  const events: Event[] = [];
  let failWrite: 'nothing-written' | 'written' | undefined;
  let failOpen = false;
  /** The failure of this tick is under way (an apply's append and write fail together). */
  let failing = false;
  const faults: StoreFaults = {
    before(op: StoreOperation) {
      // Nothing written: the first write fails (an apply's log append, or a LevelDB batch).
      // An apply consults 'append' and 'write' together (they run at once): both fail, so
      // the disk fault ends after this tick.
      if ((op === 'append' || op === 'write') && failWrite === 'nothing-written') {
        if (!failing) {
          failing = true;
          events.push('write-failed');
          setImmediate(() => {
            failWrite = undefined;
            failing = false;
          });
        }
        throw new Error('IO error: simulated failure of the store write');
      }
      if (op === 'open' && failOpen) {
        failOpen = false;
        events.push('open-failed');
        throw new Error('simulated open failure');
      }
    },
    after(op: StoreOperation) {
      if (op === 'write' && failWrite === 'written') {
        failWrite = undefined;
        events.push('write-failed');
        throw new Error('IO error: simulated failure of the store write');
      }
      if (op === 'write' || op === 'close' || op === 'open') events.push(op);
    },
  };
  return {
    faults,
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
  // The audit lives next to the store, opened first as follower-node does (the store reports its open to it).
  fs.mkdirSync(dir, { recursive: true });
  const auditFile = path.join(dir, 'audit');
  const audit = ApplyAudit.open(auditFile);
  const p = probe();
  const store = await openReplicaStore(dir, { create: true, sync: true, hooks: audit, faults: p.faults });
  const log = makeLog(10);
  return { dir, store, audit, auditFile, probe: p, log };
}

/** The user data of keys k1..k10, read through one consistent view of the store. */
async function readData(store: LevelReplicaStore): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  const view = store.view();
  try {
    for (let s = 1; s <= 10; s++) {
      const v = await view.get(Buffer.from(`k${s}`));
      if (v) m.set(`k${s}`, v.toString());
    }
  } finally {
    await view.close();
  }
  return m;
}

/** Closes everything, opens the store afresh (as a restarted follower would) and returns what it holds. */
async function reopenFresh(ctx: Awaited<ReturnType<typeof setup>>) {
  ctx.audit.close();
  await ctx.store.close();
  const store = await openReplicaStore(ctx.dir, { create: false, sync: true });
  try {
    return { appliedSeq: store.appliedSeq, appliedChecksum: store.appliedChecksum, data: await readData(store) };
  } finally {
    await store.close();
  }
}

/** One raw LevelDB value of a stopped store (any generation: what a write may have left). */
async function rawValue(dir: string, key: Buffer): Promise<Buffer | undefined> {
  const db = await openStore(dir, { create: false });
  try {
    return await db.get(key);
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
    const { store, probe, log } = ctx;
    await store.apply(seqs(log, 1, 3), HISTORY);
    probe.failNextWrite('nothing-written');
    const failed = probe.events.length;
    await assert.rejects(store.apply(seqs(log, 4, 6), HISTORY), storeFailed(/^cannot apply seqs 4\.\.6: the store write failed: IO error: simulated/));
    // Nothing of the batch is reported applied, and the store still serves reads.
    assert.equal(store.appliedSeq, 3n);
    assert.equal(store.progress.position, 3n);
    assert.deepEqual(probe.events.slice(failed), ['write-failed'], 'the LevelDB handle stays open');
    assert.deepEqual(await readData(store), expectedData(3));

    // What the subscriber does before it subscribes again: reopen, then read the position back.
    const mark = probe.events.length;
    await store.ensureWritable();
    assert.deepEqual(probe.events.slice(mark), ['close', 'open'], 'closed and reopened before anything else is written');
    assert.equal(store.appliedSeq, 3n, 'the position read back from the store');
    assert.equal(store.appliedChecksum, entryChecksum(log[2]));
    await store.ensureWritable();
    assert.deepEqual(probe.events.slice(mark), ['close', 'open'], 'reopened once, not on every call');

    // The master streams from appliedSeq + 1.
    await store.apply(seqs(log, 4, 6), HISTORY);
    await store.apply(seqs(log, 7, 10), HISTORY);
    assert.equal(store.appliedSeq, 10n);
    assert.deepEqual(await readData(store), expectedData(10));

    const fresh = await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 3\napply 4 6\napply 7 10\n', 10);
    assert.equal(fresh.appliedChecksum, entryChecksum(log[9]));
  });

  it('a write that failed after reaching the store, then apply() again without an explicit reopen: refused, never applied twice', async () => {
    const ctx = await setup();
    const { store, probe, log } = ctx;
    await store.apply(seqs(log, 1, 3), HISTORY);
    probe.failNextWrite('written');
    await assert.rejects(store.apply(seqs(log, 4, 6), HISTORY), storeFailed(/^cannot apply seqs 4\.\.6: the store write failed/));
    // apply() itself reopens and reads the position back before it checks the seqs.
    await assert.rejects(store.apply(seqs(log, 4, 6), HISTORY), (err) => isReplicatorError(err, ErrorCode.SEQ_GAP) && /expected seq 7, received seq 4/.test((err as Error).message));
    assert.equal(store.appliedSeq, 6n);
    await store.apply(seqs(log, 7, 10), HISTORY);
    assert.deepEqual(await readData(store), expectedData(10));
    await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 6\napply 7 10\n', 10);
  });

  it('a write that failed after reaching the store: the reopen reads seq 6 back, so 4..6 are not applied again', async () => {
    const ctx = await setup();
    const { store, probe, log } = ctx;
    await store.apply(seqs(log, 1, 3), HISTORY);
    probe.failNextWrite('written');
    await assert.rejects(store.apply(seqs(log, 4, 6), HISTORY), storeFailed(/^cannot apply seqs 4\.\.6: the store write failed/));
    // A failed write is never reported as applied, even though it may be on disk.
    assert.equal(store.appliedSeq, 3n);
    const waiting = store.progress.wait(6n, 10_000);

    await store.ensureWritable();
    assert.equal(store.appliedSeq, 6n, 'the position is what the store holds, not what the applier last knew');
    assert.equal(store.appliedChecksum, entryChecksum(log[5]));
    assert.equal(await waiting, true, 'a read waiting for seq 6 is released once the store is known to hold it');
    // Offered again (by a master that did not hear of them), 4..6 are refused, not applied twice.
    await assert.rejects(store.apply(seqs(log, 4, 6), HISTORY), (err) => isReplicatorError(err, ErrorCode.SEQ_GAP) && /expected seq 7, received seq 4/.test((err as Error).message));
    await store.apply(seqs(log, 7, 10), HISTORY);
    assert.deepEqual(await readData(store), expectedData(10));

    await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 6\napply 7 10\n', 10);
  });

  it('never writes through the failed handle: the next write reopens first', async () => {
    const ctx = await setup();
    const { store, probe, log } = ctx;
    await store.apply(seqs(log, 1, 2), HISTORY);
    probe.failNextWrite('nothing-written');
    await assert.rejects(store.apply(seqs(log, 3, 4), HISTORY), storeFailed(/cannot apply seqs 3\.\.4/));
    const mark = probe.events.length;
    // A write through the applier (the next batch, a snapshot switch, a background clear)
    // closes and reopens the store before it touches it.
    await store.apply(seqs(log, 3, 4), HISTORY);
    assert.deepEqual(probe.events.slice(mark), ['close', 'open', 'write']);
    assert.equal(store.appliedSeq, 4n);
    assert.deepEqual(checkAudit(fs.readFileSync(ctx.auditFile, 'utf8'), 4n), []);
    const fresh = await reopenFresh(ctx);
    assert.equal(fresh.appliedSeq, 4n);
    assert.deepEqual(fresh.data, expectedData(4));
  });

  it('a reopen that fails is STORE_FAILED and is retried; nothing is written until one succeeds', async () => {
    const ctx = await setup();
    const { store, probe, log } = ctx;
    await store.apply(seqs(log, 1, 3), HISTORY);
    probe.failNextWrite('nothing-written');
    await assert.rejects(store.apply(seqs(log, 4, 5), HISTORY), storeFailed(/cannot apply seqs 4\.\.5/));
    probe.failNextOpen();
    const mark = probe.events.length;
    await assert.rejects(store.ensureWritable(), storeFailed(/^cannot reopen the store after a failed write: simulated open failure/));
    // The subscriber backs off and calls ensureWritable again.
    await store.ensureWritable();
    assert.deepEqual(probe.events.slice(mark), ['close', 'open-failed', 'open']);
    assert.equal(store.appliedSeq, 3n);
    await store.apply(seqs(log, 4, 10), HISTORY);
    await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 3\napply 4 10\n', 10);
  });
});

describe('follower applier: staged batches (the next verified while the previous is written)', () => {
  it('stages after an uncommitted batch, commits in order; out of order is refused and writes nothing', async () => {
    const ctx = await setup();
    const { store, probe, log } = ctx;
    await store.apply(seqs(log, 1, 2), HISTORY);
    const a = await store.stage(seqs(log, 3, 5), HISTORY);
    const b = await store.stage(seqs(log, 6, 8), HISTORY, a.to);
    assert.equal(store.appliedSeq, 2n, 'staging writes nothing and moves nothing');
    const mark = probe.events.length;
    await assert.rejects(store.commit(b), (err) => isReplicatorError(err, ErrorCode.INTERNAL) && /staged seqs 6\.\.8 do not follow the applied seq 2/.test((err as Error).message));
    assert.deepEqual(probe.events.slice(mark), [], 'the out-of-order batch was not written');
    assert.equal(store.appliedSeq, 2n);
    await store.commit(a);
    const c = await store.stage(seqs(log, 6, 8), HISTORY, a.to);
    await store.commit(c);
    assert.equal(store.appliedSeq, 8n);
    assert.deepEqual(await readData(store), expectedData(8));
    // Staging from a stale position is refused by the chain checks, before any write.
    await assert.rejects(store.stage(seqs(log, 6, 8), HISTORY), (err) => isReplicatorError(err, ErrorCode.SEQ_GAP));
    await assertDurableEnd(ctx, 'open 0\napply 1 2\napply 3 5\napply 6 8\n', 8);
  });

  it('a batch staged while the previous write fails is refused (STORE_FAILED) and never written through the failed handle', async () => {
    const ctx = await setup();
    const { store, probe, log } = ctx;
    await store.apply(seqs(log, 1, 3), HISTORY);
    const a = await store.stage(seqs(log, 4, 5), HISTORY);
    const b = await store.stage(seqs(log, 6, 7), HISTORY, a.to);
    probe.failNextWrite('written');
    await assert.rejects(store.commit(a), storeFailed(/cannot apply seqs 4\.\.5: the store write failed/));
    const mark = probe.events.length;
    await assert.rejects(store.commit(b), storeFailed(/cannot apply seqs 6\.\.7: another store write failed meanwhile/));
    assert.deepEqual(probe.events.slice(mark), [], 'nothing written after the failure');
    // The retry reopens, reads 5 back (the failed batch did land) and goes on from 6.
    await store.ensureWritable();
    assert.equal(store.appliedSeq, 5n);
    await store.apply(seqs(log, 6, 10), HISTORY);
    assert.deepEqual(await readData(store), expectedData(10));
    await assertDurableEnd(ctx, 'open 0\napply 1 3\nopen 5\napply 6 10\n', 10);
  });

  it('a batch staged at the applied position is refused once any other store write has failed', async () => {
    const ctx = await setup();
    const { store, probe, log } = ctx;
    await store.apply(seqs(log, 1, 3), HISTORY);
    const a = await store.stage(seqs(log, 4, 6), HISTORY);
    probe.failNextWrite('nothing-written');
    await assert.rejects(store.writePairs(store.stagePairs(7, [{ key: Buffer.from('other'), value: Buffer.from('x') }]), 'write something else'), storeFailed(/cannot write something else/));
    const mark = probe.events.length;
    await assert.rejects(store.commit(a), storeFailed(/cannot apply seqs 4\.\.6: another store write failed meanwhile/));
    assert.deepEqual(probe.events.slice(mark), [], 'not written through the failed handle');
    await store.apply(seqs(log, 4, 10), HISTORY);
    assert.deepEqual(probe.events.slice(mark, mark + 3), ['close', 'open', 'write'], 'reopened first');
    assert.deepEqual(await readData(store), expectedData(10));
    await reopenFresh(ctx);
  });

  it('a filled snapshot batch is refused once another store write has failed, and never written', async () => {
    const ctx = await setup();
    const { store, probe } = ctx;
    const staged = store.stagePairs(7, [{ key: Buffer.from('staged'), value: Buffer.from('x') }]);
    probe.failNextWrite('nothing-written');
    await assert.rejects(store.writePairs(store.stagePairs(7, [{ key: Buffer.from('other'), value: Buffer.from('x') }]), 'write something else'), storeFailed(/cannot write something else/));
    const mark = probe.events.length;
    await assert.rejects(store.writePairs(staged, 'store pairs'), storeFailed(/cannot store pairs: another store write failed meanwhile/));
    assert.deepEqual(probe.events.slice(mark), [], 'not written through the failed handle');
    ctx.audit.close();
    await store.close();
    // Generation 7 is not the active one, so only LevelDB itself (before an open clears it) shows it.
    assert.equal(await rawValue(ctx.dir, dataKey(7, Buffer.from('staged'))), undefined);
    await reopenFresh(ctx);
  });
});
