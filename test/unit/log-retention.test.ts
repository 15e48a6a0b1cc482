import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { entryCommitTimeMs, entrySeq, MutationKind } from '../../src/wire/entry-codec.js';
import { LOG_PREFIX_END, LOG_PREFIX_START, logKey } from '../../src/storage/layout.js';
import type { Store } from '../../src/storage/level-store.js';
import { openMasterStore } from '../../src/storage/level-master-store.js';
import { AckWaiters } from '../../src/master/ack-waiters.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { GroupCommitter } from '../../src/master/group-commit.js';
import { LogRetention, type RetentionPolicy } from '../../src/master/log-retention.js';
import { verifyLog } from '../../src/storage/log-verify.js';
import { MasterMetrics } from '../../src/master/metrics.js';
import { storedEntryAt } from '../../src/storage/level-log.js';
import { WriteGate } from '../../src/master/write-gate.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
const POLICY: RetentionPolicy = {
  retainEntries: 10n,
  retainAgeMs: 0,
  retainBytes: 0,
  slotMaxLagEntries: 1_000_000n,
  slotMaxLagBytes: 0,
  trimIntervalMs: 1_000,
};

async function setup(entries: number, value = 'v') {
  const store = await openMasterStore(path.join(tempDir(), 'm'), { create: true });
  const { db, log: wal } = store;
  const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 1_000, maxGroupBytes: 1 << 24 }, log, () => {});
  const registry = new FollowerRegistry();
  for (let i = 0; i < entries; i++) {
    await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(`k${i}`), value: Buffer.from(value) }]], 2 + value.length);
  }
  return { store, db, wal, registry, committer };
}

/**
 * Entries of about 140 bytes with incompressible values, one per chunk, compacted into
 * table files: the bytes rules use LevelDB's size estimate, which sees table files only
 * (not the memtable).
 */
async function setupOnDisk(entries: number) {
  const store = await openMasterStore(path.join(tempDir(), 'm'), { create: true });
  const { db, log: wal } = store;
  const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 1_000, maxGroupBytes: 1 << 24 }, log, () => {});
  for (let i = 0; i < entries; i++) {
    await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(`k${i}`), value: crypto.randomBytes(100) }]], 110);
  }
  await committer.close();
  await db.compactRange(LOG_PREFIX_START, LOG_PREFIX_END);
  return { store, db, wal, registry: new FollowerRegistry() };
}

/** LevelDB's estimate of the log from seq s on, for s in [from, to] (what the bytes rules read). */
async function estimates(db: Store, from: bigint, to: bigint): Promise<(s: bigint) => number> {
  const e = new Map<bigint, number>();
  for (let s = from; s <= to + 1n; s++) e.set(s, await db.approximateSize(logKey(s), LOG_PREFIX_END));
  return (s) => {
    const v = e.get(s);
    if (v === undefined) throw new Error(`no estimate for seq ${s}`);
    return v;
  };
}

describe('log retention', () => {
  it('keeps the newest N entries, and the chain stays verifiable across the trim', async () => {
    const { store, db, wal, registry } = await setup(2_500);
    await new LogRetention(store, registry, POLICY, log).runOnce();
    assert.equal(wal.firstSeq, 2_491n);
    const v = await verifyLog(db);
    assert.equal(v.corrupt, undefined);
    assert.equal(v.firstSeq, 2_491n);
    assert.equal(v.lastSeq, 2_500n);
    assert.equal(v.base.seq, 2_490n);
    await db.close();
  });

  it('trims exactly to the entry inside a chunk, rewriting the chunk that straddles the cut', async () => {
    const store = await openMasterStore(path.join(tempDir(), 'm'), { create: true });
    const { db, log: wal } = store;
    const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 1_000, maxGroupBytes: 1 << 24 }, log, () => {});
    // Requests of 100 writes: chunks of 100 entries.
    for (let r = 0; r < 25; r++) {
      await committer.submit(Array.from({ length: 100 }, (_, i) => [{ kind: MutationKind.PUT, key: Buffer.from(`k${r}-${i}`), value: Buffer.from('v') }]), 300);
    }
    await new LogRetention(store, new FollowerRegistry(), { ...POLICY, retainEntries: 150n }, log).runOnce();
    assert.equal(wal.firstSeq, 2_351n);
    const v = await verifyLog(db);
    assert.equal(v.corrupt, undefined);
    assert.equal(v.firstSeq, 2_351n);
    assert.equal(v.base.seq, 2_350n);
    assert.equal(v.lastSeq, 2_500n);
    assert.equal(entrySeq((await storedEntryAt(db, 2_351n))!), 2_351n);
    assert.equal(await storedEntryAt(db, 2_350n), undefined);
    await committer.close();
    await db.close();
  });

  it('a slot holds the log for its follower until the cap, then is lost', async () => {
    const { store, db, wal, registry } = await setup(100);
    const f = registry.attach(7, 'peer', '', true);
    registry.startStream(f, 31n, wal.lastSeq); // applied 30
    registry.detach(f);
    await new LogRetention(store, registry, POLICY, log).runOnce();
    assert.equal(wal.firstSeq, 31n, 'the slot keeps seq 31 on');
    assert.equal(f.slotLost, false);
    await new LogRetention(store, registry, { ...POLICY, slotMaxLagEntries: 50n }, log).runOnce();
    assert.equal(f.slotLost, true, '70 behind with a cap of 50');
    assert.equal(wal.firstSeq, 91n);
    // The lost slot is persisted and survives a restart of the master.
    const reloaded = FollowerRegistry.fromSlots(await store.loadSlots());
    assert.equal(reloaded.list().find((r) => r.id === 7)?.slotLost, true);
    await db.close();
  });

  it('the age rule keeps entries younger than the age', async (t) => {
    // A mocked clock (Date only; timers and LevelDB's I/O run for real): the committer
    // stamps entries and the retention computes ages with Date.now(), so every age here
    // is exact, however slow the machine.
    const T = 1_700_000_000_000;
    t.mock.timers.enable({ apis: ['Date'], now: T });
    const { store, db, wal, registry, committer } = await setup(50); // committed at T
    t.mock.timers.tick(60);
    for (let i = 0; i < 5; i++) await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(`y${i}`), value: Buffer.from('v') }]], 3); // at T + 60
    assert.equal(entryCommitTimeMs((await wal.entryAt(50n))!), T, 'the entries carry the mocked commit time');
    assert.equal(entryCommitTimeMs((await wal.entryAt(51n))!), T + 60);
    t.mock.timers.tick(20); // now T + 80: the old entries are 80 ms old, the young ones 20 ms
    const trim = (retainAgeMs: number) => new LogRetention(store, registry, { ...POLICY, retainEntries: 1n, retainAgeMs }, log).runOnce();
    await trim(81);
    assert.equal(wal.firstSeq, 1n, 'an age above the oldest entry keeps everything');
    await trim(79);
    assert.equal(wal.firstSeq, 51n, 'exactly the five young entries stay');
    await trim(21);
    assert.equal(wal.firstSeq, 51n, 'the young entries are younger than 21 ms: kept');
    await trim(19);
    assert.equal(wal.firstSeq, 55n, 'only the retainEntries rule (and the newest entry) is left');
    await committer.close();
    await db.close();
  });

  it('the bytes rule keeps exactly the shortest newest run of log that LevelDB estimates at B bytes or more', async () => {
    const { store, db, wal, registry } = await setupOnDisk(3_000);
    const last = wal.lastSeq;
    const trim = (p: Partial<RetentionPolicy>) => new LogRetention(store, registry, { ...POLICY, retainEntries: 1n, ...p }, log).runOnce();
    /** What the rule must keep for B: from one entry before the first whose suffix estimate fits in B. */
    const expectedFirst = async (B: number) => {
      const e = await estimates(db, wal.firstSeq, last);
      let s = wal.firstSeq;
      while (s <= last && e(s) > B) s++;
      return { first: s > wal.firstSeq ? s - 1n : s, e };
    };

    // More than the whole log is estimated at: nothing is trimmed.
    const whole = (await estimates(db, 1n, last))(1n);
    assert.ok(whole > 200_000, `the log's ${whole} bytes are in table files`);
    await trim({ retainBytes: whole + 1 });
    assert.equal(wal.firstSeq, 1n);

    // B exactly the estimate of some suffix (a suffix of exactly B bytes fits), then one byte less.
    const mid = (await estimates(db, 1n, last))(1_500n);
    for (const B of [mid, mid - 1, Math.floor(mid / 3)]) {
      const { first, e } = await expectedFirst(B);
      await trim({ retainBytes: B });
      assert.equal(wal.firstSeq, first, `retain ${B} bytes`);
      assert.ok(e(wal.firstSeq) >= B, `at least ${B} bytes kept (${e(wal.firstSeq)} from seq ${wal.firstSeq})`);
      assert.ok(e(wal.firstSeq + 1n) <= B, `and no more than needed: from seq ${wal.firstSeq + 1n} on there are ${e(wal.firstSeq + 1n)}`);
      assert.ok(wal.firstSeq > 1n && wal.firstSeq < last);
      await trim({ retainBytes: B }); // a second pass with the same rule trims nothing more
      assert.equal(wal.firstSeq, first);
    }
    const v = await verifyLog(db);
    assert.equal(v.corrupt, undefined);
    assert.equal(v.firstSeq, wal.firstSeq);

    // Any rule keeps an entry: more newest entries than the bytes rule keeps win over it.
    const before = wal.firstSeq;
    const want = last - before; // fewer than are kept now
    await trim({ retainBytes: 1, retainEntries: want });
    assert.equal(wal.firstSeq, last - want + 1n, 'the entries rule wants more than the bytes rule: exactly its newest entries are kept, not one more');
    await db.close();
  });

  it('the bytes cap drops a slot that the entries cap would keep, and reports it', async () => {
    const lines: Record<string, unknown>[] = [];
    const captured = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const { store, db, wal, registry } = await setupOnDisk(3_000);
    const f = registry.attach(7, 'peer', '', true);
    registry.startStream(f, 101n, wal.lastSeq); // applied 100: 2900 entries behind
    registry.detach(f);
    const metrics = new MasterMetrics({ wal, followers: registry, gate: new WriteGate({ minFollowers: 0, maxLagMs: 10_000 }, registry, wal), acks: new AckWaiters(registry) });
    const slotLostMetric = async () => (await metrics.registry.getSingleMetric('lr_master_follower_slot_lost')!.get()).values.find((v) => v.labels.follower === '7')?.value;
    const lagBytes = (await estimates(db, 101n, 101n))(101n);
    assert.ok(lagBytes > 200_000, `the follower is ${lagBytes} bytes of log behind`);
    const trim = (slotMaxLagBytes: number) =>
      new LogRetention(store, registry, { ...POLICY, slotMaxLagEntries: 1_000_000n, slotMaxLagBytes }, captured).runOnce();

    await trim(0); // 0: no bytes cap
    assert.equal(f.slotLost, false);
    await trim(lagBytes); // exactly at the cap is not beyond it
    assert.equal(f.slotLost, false, `${lagBytes} bytes behind with a cap of ${lagBytes}: the slot holds`);
    assert.equal(wal.firstSeq, 101n, 'and the log keeps what follower 7 needs');
    assert.equal(await slotLostMetric(), 0);
    assert.equal(lines.filter((l) => l.level === 50).length, 0, 'nothing reported while the slot holds');

    await trim(lagBytes - 1);
    assert.equal(f.slotLost, true, `${lagBytes} bytes behind with a cap of ${lagBytes - 1}: lost, though only 2900 of 1000000 entries behind`);
    assert.equal(wal.firstSeq, wal.lastSeq - POLICY.retainEntries + 1n, 'the log no longer waits for it');
    const errors = lines.filter((l) => l.level === 50);
    assert.equal(errors.length, 1, JSON.stringify(lines));
    assert.match(String(errors[0].msg), /^follower 7 fell behind the retention cap; its slot is lost/);
    assert.equal(errors[0].followerId, 7);
    assert.equal(errors[0].lagBytes, lagBytes);
    assert.equal(errors[0].lagEntries, '2900');
    assert.equal(errors[0].appliedSeq, '100');
    assert.equal(await slotLostMetric(), 1, 'lr_master_follower_slot_lost{follower="7"} is 1');
    const reloaded = FollowerRegistry.fromSlots(await store.loadSlots());
    assert.equal(reloaded.list().find((r) => r.id === 7)?.slotLost, true, 'the lost slot is persisted');
    await trim(lagBytes - 1);
    assert.equal(lines.filter((l) => l.level === 50).length, 1, 'reported once, not on every pass');
    await db.close();
  });

  it('never trims the newest entry', async () => {
    const { store, db, wal, registry } = await setup(5);
    await new LogRetention(store, registry, { ...POLICY, retainEntries: 1n }, log).runOnce();
    assert.equal(wal.firstSeq, 5n);
    assert.equal(wal.lastSeq, 5n);
    await db.close();
  });
});
