import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { entryCommitTimeMs, entrySeq, MutationKind } from '../../src/common/entry-codec.js';
import { openStore } from '../../src/common/store.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { GroupCommitter } from '../../src/master/group-commit.js';
import { LogRetention, type RetentionPolicy } from '../../src/master/log-retention.js';
import { verifyLog } from '../../src/master/log-verify.js';
import { storedEntryAt, Wal } from '../../src/master/wal.js';
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
  const db = await openStore(path.join(tempDir(), 'm'), { create: true });
  const wal = await Wal.open(db);
  const committer = new GroupCommitter(db, wal, { sync: false, maxGroupEntries: 1_000, maxGroupBytes: 1 << 24 }, log, () => {});
  const registry = new FollowerRegistry();
  for (let i = 0; i < entries; i++) {
    await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(`k${i}`), value: Buffer.from(value) }]], 2 + value.length);
  }
  return { db, wal, registry, committer };
}

describe('log retention', () => {
  it('keeps the newest N entries, and the chain stays verifiable across the trim', async () => {
    const { db, wal, registry } = await setup(2_500);
    await new LogRetention(db, wal, registry, POLICY, log).runOnce();
    assert.equal(wal.firstSeq, 2_491n);
    const v = await verifyLog(db);
    assert.equal(v.corrupt, undefined);
    assert.equal(v.firstSeq, 2_491n);
    assert.equal(v.lastSeq, 2_500n);
    assert.equal(v.base.seq, 2_490n);
    await db.close();
  });

  it('trims exactly to the entry inside a chunk, rewriting the chunk that straddles the cut', async () => {
    const db = await openStore(path.join(tempDir(), 'm'), { create: true });
    const wal = await Wal.open(db);
    const committer = new GroupCommitter(db, wal, { sync: false, maxGroupEntries: 1_000, maxGroupBytes: 1 << 24 }, log, () => {});
    // Requests of 100 writes: chunks of 100 entries.
    for (let r = 0; r < 25; r++) {
      await committer.submit(Array.from({ length: 100 }, (_, i) => [{ kind: MutationKind.PUT, key: Buffer.from(`k${r}-${i}`), value: Buffer.from('v') }]), 300);
    }
    await new LogRetention(db, wal, new FollowerRegistry(), { ...POLICY, retainEntries: 150n }, log).runOnce();
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
    const { db, wal, registry } = await setup(100);
    const f = registry.attach(7, 'peer', '', true);
    registry.startStream(f, 31n, wal.lastSeq); // applied 30
    registry.detach(f);
    await new LogRetention(db, wal, registry, POLICY, log).runOnce();
    assert.equal(wal.firstSeq, 31n, 'the slot keeps seq 31 on');
    assert.equal(f.slotLost, false);
    await new LogRetention(db, wal, registry, { ...POLICY, slotMaxLagEntries: 50n }, log).runOnce();
    assert.equal(f.slotLost, true, '70 behind with a cap of 50');
    assert.equal(wal.firstSeq, 91n);
    // The lost slot is persisted and survives a restart of the master.
    const reloaded = await FollowerRegistry.load(db);
    assert.equal(reloaded.list().find((r) => r.id === 7)?.slotLost, true);
    await db.close();
  });

  it('the age rule keeps entries younger than the age', async (t) => {
    // A mocked clock (Date only; timers and LevelDB's I/O run for real): the committer
    // stamps entries and the retention computes ages with Date.now(), so every age here
    // is exact, however slow the machine.
    const T = 1_700_000_000_000;
    t.mock.timers.enable({ apis: ['Date'], now: T });
    const { db, wal, registry, committer } = await setup(50); // committed at T
    t.mock.timers.tick(60);
    for (let i = 0; i < 5; i++) await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(`y${i}`), value: Buffer.from('v') }]], 3); // at T + 60
    assert.equal(entryCommitTimeMs((await wal.entryAt(50n))!), T, 'the entries carry the mocked commit time');
    assert.equal(entryCommitTimeMs((await wal.entryAt(51n))!), T + 60);
    t.mock.timers.tick(20); // now T + 80: the old entries are 80 ms old, the young ones 20 ms
    const trim = (retainAgeMs: number) => new LogRetention(db, wal, registry, { ...POLICY, retainEntries: 1n, retainAgeMs }, log).runOnce();
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

  it('the bytes rule keeps at least the newest B bytes (as LevelDB estimates them)', async () => {
    const { db, wal, registry } = await setup(3_000, 'x'.repeat(200));
    await db.compactRange(Buffer.from([0x01]), Buffer.from([0x02])); // sizes are estimated from table files
    await new LogRetention(db, wal, registry, { ...POLICY, retainEntries: 1n, retainBytes: 100_000 }, log).runOnce();
    const kept = wal.lastSeq - wal.firstSeq + 1n;
    // ~230 bytes per entry on disk before compression: roughly 100 KB worth, and never all.
    assert.ok(kept >= 100n && kept < 3_000n, `kept ${kept} entries`);
    await db.close();
  });

  it('never trims the newest entry', async () => {
    const { db, wal, registry } = await setup(5);
    await new LogRetention(db, wal, registry, { ...POLICY, retainEntries: 1n }, log).runOnce();
    assert.equal(wal.firstSeq, 5n);
    assert.equal(wal.lastSeq, 5n);
    await db.close();
  });
});
