import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { MutationKind } from '../../src/wire/entry-codec.js';
import { roleForMethod } from '../../src/wire/auth.js';
import { openMasterStore } from '../../src/storage/level-master-store.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { GroupCommitter } from '../../src/master/group-commit.js';
import { LogRetention, type RetentionPolicy } from '../../src/master/log-retention.js';
import { slotHold } from '../../src/master/slot-hold.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
const POLICY: RetentionPolicy = { retainEntries: 10n, retainAgeMs: 0, retainBytes: 0, slotMaxLagEntries: 1_000_000n, slotMaxLagBytes: 0, trimIntervalMs: 1_000 };

async function master(entries: number) {
  const dir = path.join(tempDir(), 'm');
  const store = await openMasterStore(dir, { create: true });
  const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 1_000, maxGroupBytes: 1 << 24 }, log, () => {});
  const commit = async (n: number) => {
    for (let i = 0; i < n; i++) await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(`k${i}`), value: Buffer.from('v') }]], 3);
  };
  await commit(entries);
  return { dir, store, committer, commit };
}

/** A registry with followers streamed up to (and having acknowledged) the given seqs, then disconnected unless listed in `connected`. */
function registryWith(positions: Record<number, bigint>, lastSeq: bigint, connected: number[] = []) {
  const registry = new FollowerRegistry();
  for (const [id, seq] of Object.entries(positions)) {
    const r = registry.attach(Number(id), `peer-${id}`, '', true);
    registry.startStream(r, seq + 1n, lastSeq);
    if (!connected.includes(Number(id))) registry.detach(r);
  }
  return registry;
}

describe('dropping a replication slot', () => {
  it('the registry refuses an unknown id and a connected follower (unless forced), and forgets a dropped one', () => {
    const registry = registryWith({ 1: 5n, 2: 7n }, 20n, [2]);
    const dropped: number[] = [];
    registry.onDrop((r) => dropped.push(r.id));
    assert.throws(() => registry.drop(9, false), (e) => isReplicatorError(e, ErrorCode.SLOT_NOT_FOUND) && /follower 9 has no replication slot/.test(e.message));
    assert.throws(() => registry.drop(2, false), (e) => isReplicatorError(e, ErrorCode.FOLLOWER_CONNECTED) && /--force/.test(e.message));
    assert.deepEqual(registry.slots().map((r) => r.id), [1, 2], 'a refused drop changes nothing');
    assert.deepEqual(dropped, []);

    const one = registry.drop(1, false);
    assert.deepEqual([one.record.id, one.record.appliedSeq, one.wasConnected], [1, 5n, false]);
    assert.equal(registry.get(1), undefined);
    assert.deepEqual(registry.list().map((r) => r.id), [2]);
    assert.deepEqual(registry.takeDirtySlots().map((s) => s.followerId), [2], 'what is persisted next no longer holds it');

    const two = registry.drop(2, true);
    assert.equal(two.wasConnected, true);
    assert.deepEqual(dropped, [1, 2], 'the forced drop is heard (the stream ends)');
    assert.deepEqual(registry.list(), []);
    assert.equal(registry.durableAckCount(1n), 0, 'acknowledgements of dropped followers no longer count');
    // The same id subscribing again is a new follower: no slot until accepted.
    const again = registry.attach(2, 'peer', '', true);
    assert.deepEqual(registry.slots(), []);
    assert.throws(() => registry.drop(2, true), (e) => isReplicatorError(e, ErrorCode.SLOT_NOT_FOUND), 'a first subscription being checked has no slot to drop');
    registry.startStream(again, 1n, 20n);
    assert.deepEqual(registry.slots().map((r) => r.id), [2]);
  });

  it('a known follower reconnecting (being checked) is connected: its old slot drops only with force', () => {
    const registry = registryWith({ 3: 4n }, 10n);
    registry.attach(3, 'peer', '', true);
    assert.throws(() => registry.drop(3, false), (e) => isReplicatorError(e, ErrorCode.FOLLOWER_CONNECTED));
    const d = registry.drop(3, true);
    assert.deepEqual([d.record.appliedSeq, d.wasConnected], [4n, true]);
    assert.deepEqual(registry.list(), []);
  });

  it('retention deletes the stored slot durably and stops holding the log for it at its next pass', async () => {
    const { dir, store, committer, commit } = await master(100);
    const registry = registryWith({ 1: 20n, 2: 95n }, 100n);
    const retention = new LogRetention(store, registry, POLICY, log);
    await retention.runOnce();
    assert.equal(store.log.firstSeq, 21n, 'follower 1 holds the log at its slot');
    assert.deepEqual((await store.loadSlots()).map((s) => s.followerId), [1, 2]);
    assert.deepEqual(await slotHold(registry, store.log, registry.get(1)!), { slotEntries: '80', slotBytes: String(await store.log.bytesFrom(21n)) });
    assert.deepEqual((await slotHold(registry, store.log, registry.get(2)!)).slotEntries, '5');

    const { record } = await retention.dropSlot(1, false);
    assert.equal(record.appliedSeq, 20n);
    assert.deepEqual((await store.loadSlots()).map((s) => s.followerId), [2], 'deleted from the store before dropSlot resolves');
    await commit(5);
    await retention.runOnce();
    assert.equal(store.log.firstSeq, 96n, 'now only follower 2 (at 95) and --retain-entries 10 hold the log');
    await assert.rejects(retention.dropSlot(1, false), (e) => isReplicatorError(e, ErrorCode.SLOT_NOT_FOUND));

    // A clean stop saves the slots: the dropped one does not come back, not even after a restart.
    await committer.close();
    await retention.stop();
    await store.close();
    const reopened = await openMasterStore(dir, { create: false });
    assert.deepEqual((await reopened.loadSlots()).map((s) => s.followerId), [2]);
    await reopened.close();
  });

  it('a slot write that failed before the drop never writes the dropped slot back', async () => {
    const { store, committer } = await master(30);
    const registry = registryWith({ 1: 10n }, 30n, [1]);
    const retention = new LogRetention(store, registry, POLICY, log);
    await retention.runOnce();
    assert.deepEqual((await store.loadSlots()).map((s) => s.followerId), [1]);
    // Follower 1 acknowledges more; the pass that would persist it fails (a full disk, say),
    // so retention keeps that write to retry: it holds slot 1.
    registry.recordSent(registry.get(1)!, 30n, 100);
    registry.ack(1, 15n, 30n);
    const wal = store.log;
    const trim = wal.trimTo.bind(wal);
    wal.trimTo = async () => {
      wal.trimTo = trim;
      throw new Error('injected: the slot write failed');
    };
    await assert.rejects(retention.runOnce(), /injected/);
    await retention.dropSlot(1, true);
    await retention.runOnce();
    assert.deepEqual(await store.loadSlots(), [], 'the retried write did not bring slot 1 back');
    await committer.close();
    await retention.stop();
    assert.deepEqual(await store.loadSlots(), []);
    await store.close();
  });

  it('DropSlot needs the write role (no new role to hand out)', () => {
    assert.equal(roleForMethod('/levelreplicator.v1.Master/DropSlot'), 'write');
  });
});
