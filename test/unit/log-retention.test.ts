import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { chainsFrom, entryChecksum, entryCommitTimeMs, entrySeq, MutationKind } from '../../src/wire/entry-codec.js';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import type { ReplicationLog } from '../../src/storage/interfaces.js';
import { logDir, openMasterStore } from '../../src/storage/level-master-store.js';
import { firstSeqOfName, HEADER_BYTES } from '../../src/storage/segment-format.js';
import { AckWaiters } from '../../src/master/ack-waiters.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { GroupCommitter } from '../../src/master/group-commit.js';
import { LogRetention, type RetentionPolicy } from '../../src/master/log-retention.js';
import { MasterMetrics } from '../../src/master/metrics.js';
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

async function setup(entries: number, value = 'v', maxSegmentBytes?: number) {
  const dir = path.join(tempDir(), 'm');
  const store = await openMasterStore(dir, { create: true, maxSegmentBytes });
  const { log: wal } = store;
  const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 1_000, maxGroupBytes: 1 << 24 }, log, () => {});
  const registry = new FollowerRegistry();
  for (let i = 0; i < entries; i++) {
    await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(`k${i}`), value: Buffer.from(value) }]], 2 + value.length);
  }
  const close = async () => {
    await committer.close();
    await store.close();
  };
  return { dir, store, wal, registry, committer, close };
}

/** Entries of about 140 bytes with incompressible values, one per group, in segments of 64 KiB: a log of 3000 spans several. */
async function setupOnDisk(entries: number) {
  const m = await setup(0, 'v', 64 * 1024);
  for (let i = 0; i < entries; i++) {
    await m.committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(`k${i}`), value: crypto.randomBytes(100) }]], 110);
  }
  return m;
}

/** The segment files on disk, oldest first: first seq and bytes. */
function segmentsOf(dir: string): { name: string; first: bigint; bytes: number }[] {
  const names = fs.readdirSync(logDir(dir)).filter((n) => firstSeqOfName(n) !== undefined).sort();
  return names.map((name) => ({ name, first: firstSeqOfName(name)!, bytes: fs.statSync(path.join(logDir(dir), name)).size }));
}

/** The log's size from seq s on, as the bytes rules read it (bytesFrom), for s in [from, to + 1]. */
async function estimates(wal: ReplicationLog, from: bigint, to: bigint): Promise<(s: bigint) => number> {
  const e = new Map<bigint, number>();
  for (let s = from; s <= to + 1n; s++) e.set(s, await wal.bytesFrom(s));
  return (s) => {
    const v = e.get(s);
    if (v === undefined) throw new Error(`no estimate for seq ${s}`);
    return v;
  };
}

/**
 * What a verification of the log must find: firstSeq..lastSeq all there, in order, each
 * chained from the one before, the first from the base's checksum (`base`, the checksum of
 * the last trimmed entry, known before the trim), which the log still knows; nothing below.
 */
async function assertWhole(wal: ReplicationLog, firstSeq: bigint, lastSeq: bigint, base: number): Promise<void> {
  assert.equal(wal.firstSeq, firstSeq);
  assert.equal(wal.lastSeq, lastSeq);
  assert.equal(await wal.checksumAt(firstSeq - 1n), base, 'the base: the checksum of the last trimmed entry');
  await assert.rejects(wal.read(firstSeq - 1n, 1, Infinity), (e) => isReplicatorError(e, ErrorCode.LOG_TRIMMED));
  const got = await wal.read(firstSeq, Number(lastSeq - firstSeq) + 1, Infinity);
  assert.deepEqual(got.map(entrySeq), Array.from({ length: Number(lastSeq - firstSeq) + 1 }, (_, i) => firstSeq + BigInt(i)));
  let prev = base;
  for (const e of got) {
    assert.ok(chainsFrom(e, prev), `seq ${entrySeq(e)} chains from the one before`);
    prev = entryChecksum(e);
  }
  assert.equal(prev, wal.lastChecksum);
}

describe('log retention', () => {
  it('keeps the newest N entries, and the chain stays verifiable across the trim and a restart', async () => {
    const { dir, store, wal, registry, close } = await setup(2_500);
    const base = entryChecksum((await wal.entryAt(2_490n))!);
    await new LogRetention(store, registry, POLICY, log).runOnce();
    await assertWhole(wal, 2_491n, 2_500n, base);
    await close();
    const again = await openMasterStore(dir, { create: false });
    await assertWhole(again.log, 2_491n, 2_500n, base);
    await again.close();
  });

  it('trims exactly to the entry inside a group and a segment, deleting only the segments wholly below the cut', async () => {
    const dir = path.join(tempDir(), 'm');
    const store = await openMasterStore(dir, { create: true, maxSegmentBytes: 16 * 1024 });
    const { log: wal } = store;
    const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 1_000, maxGroupBytes: 1 << 24 }, log, () => {});
    // Requests of 100 writes: groups of 100 entries, a few groups per segment.
    for (let r = 0; r < 25; r++) {
      await committer.submit(Array.from({ length: 100 }, (_, i) => [{ kind: MutationKind.PUT, key: Buffer.from(`k${r}-${i}`), value: Buffer.from('v') }]), 300);
    }
    const before = segmentsOf(dir);
    assert.ok(before.length >= 4, `${before.length} segments`);
    const base = entryChecksum((await wal.entryAt(2_350n))!);
    await new LogRetention(store, new FollowerRegistry(), { ...POLICY, retainEntries: 150n }, log).runOnce();
    await assertWhole(wal, 2_351n, 2_500n, base);
    assert.equal(entrySeq((await wal.entryAt(2_351n))!), 2_351n);
    assert.equal(await wal.entryAt(2_350n), undefined);
    // On disk: the segment holding seq 2351 (and the entries before it in that segment) stays, every older one is gone.
    const holding = before.filter((s) => s.first <= 2_351n).at(-1)!;
    assert.ok(holding.first < 2_351n, 'the cut is inside a segment');
    assert.deepEqual(segmentsOf(dir), before.filter((s) => s.first >= holding.first));
    await committer.close();
    await store.close();
    const again = await openMasterStore(dir, { create: false, maxSegmentBytes: 16 * 1024 });
    await assertWhole(again.log, 2_351n, 2_500n, base);
    await again.close();
  });

  it('a slot holds the log for its follower until the cap, then is lost', async () => {
    const { store, wal, registry, close } = await setup(100);
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
    await close();
  });

  it('the age rule keeps entries younger than the age', async (t) => {
    // A mocked clock (Date only; timers and LevelDB's I/O run for real): the committer
    // stamps entries and the retention computes ages with Date.now(), so every age here
    // is exact, however slow the machine.
    const T = 1_700_000_000_000;
    t.mock.timers.enable({ apis: ['Date'], now: T });
    const { store, wal, registry, committer, close } = await setup(50); // committed at T
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
    await close();
  });

  it('the bytes rule keeps exactly the shortest newest run of log that the segment files hold at B bytes or more', async () => {
    const { dir, store, wal, registry, close } = await setupOnDisk(3_000);
    const last = wal.lastSeq;
    const checksums = new Map((await wal.read(1n, 10_000, Infinity)).map((e) => [entrySeq(e), entryChecksum(e)]));
    const trim = (p: Partial<RetentionPolicy>) => new LogRetention(store, registry, { ...POLICY, retainEntries: 1n, ...p }, log).runOnce();
    /** What the rule must keep for B: from one entry before the first whose suffix estimate fits in B. */
    const expectedFirst = async (B: number) => {
      const e = await estimates(wal, wal.firstSeq, last);
      let s = wal.firstSeq;
      while (s <= last && e(s) > B) s++;
      return { first: s > wal.firstSeq ? s - 1n : s, e };
    };

    // More than the whole log holds: nothing is trimmed.
    const whole = (await estimates(wal, 1n, last))(1n);
    assert.equal(whole, segmentsOf(dir).reduce((n, seg) => n + seg.bytes - HEADER_BYTES, 0), 'the whole log: its segment files, headers aside');
    assert.ok(whole > 200_000 && segmentsOf(dir).length >= 4, `the log's ${whole} bytes are in ${segmentsOf(dir).length} segments`);
    await trim({ retainBytes: whole + 1 });
    assert.equal(wal.firstSeq, 1n);

    // B exactly the estimate of some suffix (a suffix of exactly B bytes fits), then one byte less.
    const mid = (await estimates(wal, 1n, last))(1_500n);
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
    await assertWhole(wal, wal.firstSeq, last, checksums.get(wal.firstSeq - 1n)!);
    // No segment wholly below firstSeq is left, and the sizes the rule read are the files'.
    const segs = segmentsOf(dir);
    assert.ok(segs[0].first <= wal.firstSeq && (segs.length === 1 || segs[1].first > wal.firstSeq), `segments from ${segs[0].first}, firstSeq ${wal.firstSeq}`);
    if (segs.length > 1) assert.equal(await wal.bytesFrom(segs[1].first), segs.slice(1).reduce((n, seg) => n + seg.bytes - HEADER_BYTES, 0));

    // Any rule keeps an entry: more newest entries than the bytes rule keeps win over it.
    const before = wal.firstSeq;
    const want = last - before; // fewer than are kept now
    await trim({ retainBytes: 1, retainEntries: want });
    assert.equal(wal.firstSeq, last - want + 1n, 'the entries rule wants more than the bytes rule: exactly its newest entries are kept, not one more');
    await close();
  });

  it('the bytes cap drops a slot that the entries cap would keep, and reports it', async () => {
    const lines: Record<string, unknown>[] = [];
    const captured = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const { dir, store, wal, registry, close } = await setupOnDisk(3_000);
    const f = registry.attach(7, 'peer', '', true);
    registry.startStream(f, 101n, wal.lastSeq); // applied 100: 2900 entries behind
    registry.detach(f);
    const metrics = new MasterMetrics({ wal, followers: registry, gate: new WriteGate({ minFollowers: 0, maxLagMs: 10_000 }, registry, wal), acks: new AckWaiters(registry) });
    const slotLostMetric = async () => (await metrics.registry.getSingleMetric('lr_master_follower_slot_lost')!.get()).values.find((v) => v.labels.follower === '7')?.value;
    const lagBytes = (await estimates(wal, 101n, 101n))(101n);
    const onDisk = segmentsOf(dir).reduce((n, seg) => n + seg.bytes - HEADER_BYTES, 0);
    assert.ok(lagBytes > 200_000 && lagBytes < onDisk, `the follower is ${lagBytes} of the log's ${onDisk} bytes behind`);
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
    await close();
  });

  it('never trims the newest entry', async () => {
    const { store, wal, registry, close } = await setup(5);
    await new LogRetention(store, registry, { ...POLICY, retainEntries: 1n }, log).runOnce();
    assert.equal(wal.firstSeq, 5n);
    assert.equal(wal.lastSeq, 5n);
    await close();
  });
});
