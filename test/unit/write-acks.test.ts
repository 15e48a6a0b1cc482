import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { openMasterStore } from '../../src/storage/level-master-store.js';
import { resolveAckPolicy } from '../../src/master/ack-policy.js';
import { AckWaiters } from '../../src/master/ack-waiters.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { isConnectedState } from '../../src/common/replication-state.js';
import { GroupCommitter } from '../../src/master/group-commit.js';
import { WriteGate } from '../../src/master/write-gate.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
const put = (k: string): Mutation[] => [{ kind: MutationKind.PUT, key: Buffer.from(k), value: Buffer.from('v') }];

/** A follower subscribed from seq fromSeq whose position was verified. */
function follow(registry: FollowerRegistry, id: number, durable: boolean, fromSeq = 1n, masterLastSeq = 0n) {
  const r = registry.attach(id, `peer-${id}`, '', durable);
  registry.startStream(r, fromSeq, masterLastSeq);
  return r;
}

describe('write acknowledgement: follower registry and ack waiters', () => {
  it('a waiter is released once N durable followers acknowledged its seq; --no-sync acks never count', async () => {
    const registry = new FollowerRegistry();
    const acks = new AckWaiters(registry);
    for (const [id, durable] of [[1, true], [2, false], [3, true]] as const) registry.recordSent(follow(registry, id, durable), 10n, 0);
    let outcome: { acked: number; reached: boolean } | undefined;
    const waiting = acks.wait(5n, 2, 60_000).then((o) => (outcome = o));
    registry.ack(2, 10n, 10n); // not durable
    registry.ack(1, 4n, 10n); // not far enough
    await Promise.resolve();
    assert.equal(outcome, undefined);
    assert.equal(acks.waiting, 1);
    registry.ack(1, 5n, 10n);
    await Promise.resolve();
    assert.equal(outcome, undefined, 'one durable follower is not two');
    registry.ack(3, 9n, 10n);
    await waiting;
    assert.deepEqual(outcome, { acked: 2, reached: true });
    assert.equal(acks.waiting, 0);
  });

  it('times out with the count so far, and answers at once when already satisfied or when the budget is 0', async () => {
    const registry = new FollowerRegistry();
    const acks = new AckWaiters(registry);
    registry.recordSent(follow(registry, 1, true), 3n, 0);
    registry.ack(1, 3n, 3n);
    assert.deepEqual(await acks.wait(3n, 1, 60_000), { acked: 1, reached: true });
    assert.deepEqual(await acks.wait(3n, 2, 0), { acked: 1, reached: false });
    const started = Date.now();
    assert.deepEqual(await acks.wait(3n, 2, 50), { acked: 1, reached: false });
    assert.ok(Date.now() - started >= 45);
    const pending = acks.wait(4n, 1, 60_000);
    acks.releaseAll();
    assert.deepEqual(await pending, { acked: 0, reached: false });
    // A write committed after the release (the master is closing) is answered at once too,
    // not after its timeout, by when the server's shutdown grace has cancelled the call.
    const after = Date.now();
    assert.deepEqual(await acks.wait(5n, 1, 5_000), { acked: 0, reached: false });
    assert.ok(Date.now() - after < 1_000, `a wait begun after releaseAll lasted ${Date.now() - after} ms`);
  });

  it('never counts what the master did not send, an unverified position, or a snapshot not yet acknowledged', () => {
    const registry = new FollowerRegistry();
    let r = registry.attach(1, 'p', '', true);
    registry.ack(1, 5n, 10n);
    assert.equal(registry.durableAckCount(1n), 0, 'acks while connecting are ignored');
    registry.startStream(r, 4n, 10n); // verified: holds 1..3
    assert.equal(r.state, 'catching_up');
    assert.equal(registry.durableAckCount(3n), 1);
    registry.ack(1, 9n, 10n); // sent nothing yet beyond 3: clamped
    assert.equal(r.ackedSeq, 3n);
    registry.recordSent(r, 7n, 0);
    registry.ack(1, 9n, 10n);
    assert.equal(r.ackedSeq, 7n);
    registry.ack(1, 2n, 10n);
    assert.equal(r.ackedSeq, 7n, 'never backwards');
    assert.throws(() => registry.ack(1, 11n, 10n), (e) => isReplicatorError(e, ErrorCode.FOLLOWER_AHEAD));

    // A snapshot is sent on a new stream: the follower reconnects and is found diverged.
    registry.detach(r);
    r = registry.attach(1, 'p', '', true);
    registry.beginSnapshot(r, 10n);
    assert.equal(r.state, 'snapshot');
    assert.equal(r.appliedSeq, 10n, 'the slot holds the log after the snapshot');
    registry.ack(1, 10n, 10n);
    assert.equal(registry.durableAckCount(1n), 0, 'a snapshot being sent is not applied, and the old data is not trusted');
    registry.endSnapshot(r);
    assert.equal(r.state, 'catching_up');
    registry.ack(1, 10n, 10n);
    assert.equal(registry.durableAckCount(10n), 1);
    registry.detach(r, new Error('gone'));
    assert.equal(r.state, 'disconnected');
    assert.equal(isConnectedState(r.state), false);
    assert.equal(r.lastError, 'gone');
    assert.equal(registry.durableAckCount(10n), 1, 'what a follower durably applied stays counted after it disconnects');
    assert.throws(() => {
      registry.attach(2, 'a', '', true);
      registry.attach(2, 'b', '', true);
    }, (e) => isReplicatorError(e, ErrorCode.DUPLICATE_FOLLOWER));
  });

  it('waiting for followers never holds up the group committer', async () => {
    const store = await openMasterStore(path.join(tempDir(), 'm'), { create: true });
    try {
      const wal = store.log;
      const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 100, maxGroupBytes: 1 << 20 }, log, () => {});
      const registry = new FollowerRegistry();
      const acks = new AckWaiters(registry);
      const r = follow(registry, 1, true);
      // Write 1 waits for one follower, as the Write handler does: commit, then wait.
      const first = await committer.submit([put('a')], 2);
      const waiting = acks.wait(first.lastSeq, 1, 60_000);
      // Meanwhile many more writes commit.
      const later = await Promise.all(Array.from({ length: 20 }, (_, i) => committer.submit([put(`b${i}`)], 3)));
      assert.equal(wal.lastSeq, 21n);
      assert.equal(later.length, 20);
      assert.equal(acks.waiting, 1);
      registry.recordSent(r, 21n, 0);
      registry.ack(1, 1n, wal.lastSeq);
      assert.deepEqual(await waiting, { acked: 1, reached: true });
      await committer.close();
    } finally {
      await store.close();
    }
  });
});

describe('acknowledgement policy', () => {
  const defaults = { followers: 2, timeoutMs: 2_000 };
  it('uses the request policy, the master default, and the call deadline', () => {
    assert.deepEqual(resolveAckPolicy(null, defaults, 60_000), { followers: 2, timeoutMs: 2_000 });
    assert.deepEqual(resolveAckPolicy({ followers: 0, timeoutMs: 0 }, defaults, 60_000), { followers: 0, timeoutMs: 2_000 });
    assert.deepEqual(resolveAckPolicy({ followers: 3, timeoutMs: 9_000 }, defaults, 60_000), { followers: 3, timeoutMs: 9_000 });
    assert.deepEqual(resolveAckPolicy({ followers: 3, timeoutMs: 9_000 }, defaults, 4_500), { followers: 3, timeoutMs: 4_500 });
    assert.deepEqual(resolveAckPolicy(null, defaults, 0), { followers: 2, timeoutMs: 0 });
  });
});

describe('min-followers write gate', () => {
  it('refuses until enough followers are connected, acknowledging, and not lagging', async () => {
    const store = await openMasterStore(path.join(tempDir(), 'm'), { create: true });
    try {
      const wal = store.log;
      const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 100, maxGroupBytes: 1 << 20 }, log, () => {});
      const registry = new FollowerRegistry();
      const gate = new WriteGate({ minFollowers: 1, maxLagMs: 1_000 }, registry, wal);
      await assert.rejects(gate.check(), (e) => isReplicatorError(e, ErrorCode.NOT_ENOUGH_FOLLOWERS) && /no follower has connected/.test(e.message));
      const r = registry.attach(1, 'p', '', false);
      await assert.rejects(gate.check(), /follower 1: connecting/);
      registry.startStream(r, 1n, 0n);
      await assert.rejects(gate.check(), /follower 1: no acknowledgement yet/);
      registry.ack(1, 0n, 0n);
      await gate.check(); // durability does not matter here, only connection and lag
      await committer.submit([put('x')], 2);
      const now = Date.now();
      assert.equal((await gate.state(now)).good, 1, 'a fresh unacknowledged entry is not yet lag');
      const later = await gate.state(now + 5_000);
      assert.equal(later.accepting, false);
      assert.match(later.notGood[0], /follower 1: last acknowledgement \d+ ms ago/);
      registry.detach(r);
      await assert.rejects(gate.check(), /follower 1: disconnected.*nothing was written/);
      assert.deepEqual(await new WriteGate({ minFollowers: 0, maxLagMs: 1 }, registry, wal).check(), undefined);
      await committer.close();
    } finally {
      await store.close();
    }
  });
});
