import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { FOLLOWER_NODE_STATES, isAcceptedState, isConnectedState, STREAM_STATES } from '../../src/common/replication-state.js';
import type { FollowerRecord } from '../../src/master/follower-record.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { stateFromWire, stateToWire } from '../../src/wire/follower-status-state.js';

/** A registry with a log of every state change its listeners heard. */
function watched() {
  const registry = new FollowerRegistry();
  const heard: string[] = [];
  registry.onStateChange((r) => heard.push(`${r.id}:${r.state}`));
  return { registry, heard };
}

/** What a refused transition must leave untouched. */
const snapshotOf = (r: FollowerRecord) => ({ ...r });

/** Asserts that `move` is refused as a bug (INTERNAL) and changes nothing: record, slots, listeners. */
function assertRefused(registry: FollowerRegistry, heard: string[], r: FollowerRecord, move: () => void, what: string): void {
  const before = snapshotOf(r);
  const slots = registry.slots().map((s) => s.id);
  const heardBefore = heard.length;
  assert.throws(move, (e) => isReplicatorError(e, ErrorCode.INTERNAL) && e.message.includes(`while ${before.state}`), what);
  assert.deepEqual(snapshotOf(r), before, `${what}: the record is unchanged`);
  assert.deepEqual(registry.slots().map((s) => s.id), slots, `${what}: the slots are unchanged`);
  assert.equal(heard.length, heardBefore, `${what}: no listener heard anything`);
}

describe('follower registry: the subscription lifecycle', () => {
  it('log path: connecting -> catching_up -> streaming -> disconnected, the slot made on acceptance', () => {
    const { registry, heard } = watched();
    const r = registry.attach(1, 'peer', 'read:1', true);
    assert.equal(r.state, 'connecting');
    assert.equal(isConnectedState(r.state), true);
    assert.deepEqual(registry.slots(), [], 'a first subscription being checked has no slot');

    registry.startStream(r, 5n, 10n);
    assert.equal(r.state, 'catching_up');
    assert.deepEqual([r.appliedSeq, r.ackedSeq, r.sentSeq], [4n, 4n, 4n]);
    assert.deepEqual(registry.slots().map((s) => s.id), [1], 'accepted: it has a slot');

    registry.recordSent(r, 8n, 300);
    registry.recordSent(r, 10n, 200);
    assert.deepEqual([r.sentSeq, r.bytesSent], [10n, 500]);
    registry.recordCaughtUp(r);
    assert.equal(r.state, 'streaming');
    const since = r.stateSinceMs;
    registry.recordCaughtUp(r); // stays streaming, whatever happens next
    assert.equal(r.stateSinceMs, since);

    registry.detach(r);
    assert.equal(r.state, 'disconnected');
    assert.equal(isConnectedState(r.state), false);
    assert.deepEqual(registry.slots().map((s) => s.id), [1], 'the slot outlives the stream');
    assert.deepEqual(heard, ['1:connecting', '1:catching_up', '1:streaming', '1:disconnected']);
  });

  it('a follower with nothing left to send starts streaming at once', () => {
    const { registry, heard } = watched();
    registry.startStream(registry.attach(2, 'p', '', false), 11n, 10n);
    assert.deepEqual(heard, ['2:connecting', '2:streaming']);
  });

  it('snapshot path: connecting -> snapshot -> catching_up; acks count only after the snapshot', () => {
    const { registry, heard } = watched();
    const r = registry.attach(3, 'p', '', true);
    registry.beginSnapshot(r, 20n);
    assert.equal(r.state, 'snapshot');
    assert.equal(isAcceptedState(r.state), true);
    assert.deepEqual([r.appliedSeq, r.ackedSeq, r.sentSeq], [20n, 0n, 20n]);
    registry.ack(3, 20n, 20n);
    assert.equal(r.ackedSeq, 0n, 'a snapshot being sent is not applied');
    registry.endSnapshot(r);
    assert.equal(r.state, 'catching_up');
    registry.ack(3, 20n, 20n);
    assert.equal(r.ackedSeq, 20n);
    assert.deepEqual(heard, ['3:connecting', '3:snapshot', '3:catching_up']);
  });

  it('refuses every transition the lifecycle does not have, changing nothing', () => {
    const { registry, heard } = watched();
    const r = registry.attach(1, 'p', '', true);
    assertRefused(registry, heard, r, () => registry.endSnapshot(r), 'end a snapshot never begun');
    assertRefused(registry, heard, r, () => registry.recordSent(r, 1n, 10), 'send entries before the position is verified');
    assertRefused(registry, heard, r, () => registry.recordCaughtUp(r), 'catch up before the position is verified');
    assertRefused(registry, heard, r, () => registry.markSlotLost(r), 'lose a slot a first subscription does not have');

    registry.beginSnapshot(r, 5n);
    assertRefused(registry, heard, r, () => registry.recordSent(r, 6n, 10), 'send entries during a snapshot');
    assertRefused(registry, heard, r, () => registry.recordCaughtUp(r), 'catch up during a snapshot');
    assertRefused(registry, heard, r, () => registry.startStream(r, 6n, 5n), 'stream the log during a snapshot');
    assertRefused(registry, heard, r, () => registry.beginSnapshot(r, 5n), 'begin a second snapshot');

    registry.endSnapshot(r);
    registry.recordSent(r, 9n, 40);
    assertRefused(registry, heard, r, () => registry.recordSent(r, 8n, 1), 'send backwards on one stream');
    assertRefused(registry, heard, r, () => registry.beginSnapshot(r, 9n), 'switch a log stream to a snapshot');
    assertRefused(registry, heard, r, () => registry.endSnapshot(r), 'end a snapshot twice');

    registry.detach(r);
    // A disconnected record is final: a new subscription gets a new record.
    assertRefused(registry, heard, r, () => registry.detach(r), 'disconnect twice');
    assertRefused(registry, heard, r, () => registry.startStream(r, 10n, 9n), 'stream on a closed subscription');
    assertRefused(registry, heard, r, () => registry.recordSent(r, 10n, 1), 'send on a closed subscription');
    const next = registry.attach(1, 'p2', '', true);
    assert.notEqual(next, r);
    assert.equal(registry.get(1), next);
  });

  it('a refused subscription leaves what the master knew: no record for a new id, the old record and slot for a known one', () => {
    const { registry } = watched();
    const first = registry.attach(1, 'p', '', true);
    registry.detach(first, new Error('refused'));
    assert.equal(registry.get(1), undefined);
    assert.deepEqual(registry.slots(), []);

    const known = registry.attach(2, 'p', '', true);
    registry.startStream(known, 8n, 10n); // holds 1..7
    registry.detach(known);
    const again = registry.attach(2, 'q', '', true);
    assert.deepEqual(registry.slots().map((s) => [s.id, s.appliedSeq]), [[2, 7n]], 'a known follower keeps its slot while checked');
    registry.markSlotLost(again); // the retention pass, while the new subscription is checked
    registry.detach(again, new Error('FOLLOWER_AHEAD'));
    const restored = registry.get(2)!;
    assert.equal(restored, known, 'the record from before the refused subscription');
    assert.deepEqual([restored.state, restored.appliedSeq, restored.slotLost, restored.lastError], ['disconnected', 7n, true, 'FOLLOWER_AHEAD']);
  });

  it('a lost slot holds again once the master can stream the follower its history', () => {
    const { registry } = watched();
    const r = registry.attach(4, 'p', '', true);
    registry.startStream(r, 3n, 10n);
    registry.markSlotLost(r);
    assert.equal(r.slotLost, true);
    registry.detach(r);
    const back = registry.attach(4, 'p', '', true);
    assert.equal(back.slotLost, true, 'still lost while its position is checked');
    registry.startStream(back, 3n, 10n);
    assert.equal(back.slotLost, false);
    assert.deepEqual(registry.slots().map((s) => [s.id, s.appliedSeq, s.slotLost]), [[4, 2n, false]]);
  });
});

describe('follower registry: what Status shows beyond the lifecycle', () => {
  it('snapshot progress accumulates while the snapshot is sent, and only then', () => {
    const { registry } = watched();
    const r = registry.attach(1, 'peer', '', true);
    registry.beginSnapshot(r, 900n, 4_000);
    assert.deepEqual(r.snapshot, { seq: 900n, keysSent: 0n, bytesSent: 0, approxBytes: 4_000 });
    registry.recordSnapshotSent(r, 10, 100);
    registry.recordSnapshotSent(r, 5, 60);
    assert.deepEqual(r.snapshot, { seq: 900n, keysSent: 15n, bytesSent: 160, approxBytes: 4_000 });
    registry.endSnapshot(r);
    assert.throws(() => registry.recordSnapshotSent(r, 1, 1), (e) => isReplicatorError(e, ErrorCode.INTERNAL));
  });

  it('a follower known only from its persisted slot is not seen until it subscribes to this master', () => {
    const registry = FollowerRegistry.fromSlots([{ followerId: 3, appliedSeq: 7n, lost: false }]);
    assert.deepEqual([registry.get(3)!.seen, registry.get(3)!.stateSinceMs, registry.get(3)!.lastAckTimeMs], [false, 0, 0]);
    assert.equal(registry.holdsLog(registry.get(3)!), true);
    const r = registry.attach(3, 'peer', '', true);
    assert.equal(r.seen, true);
    registry.startStream(r, 8n, 10n);
    registry.detach(r);
    assert.equal(registry.get(3)!.seen, true, 'it stays seen once it has subscribed');
  });
});

describe('replication state vocabulary', () => {
  it('one set of names, the Status RPC enum being the same in upper case', () => {
    assert.deepEqual([...STREAM_STATES], ['connecting', 'snapshot', 'catching_up', 'streaming', 'disconnected']);
    assert.deepEqual([...FOLLOWER_NODE_STATES], [...STREAM_STATES, 'stopped']);
    for (const s of STREAM_STATES) {
      assert.equal(stateToWire(s), s.toUpperCase());
      assert.equal(stateFromWire(stateToWire(s)), s);
    }
    assert.equal(isConnectedState('stopped'), false);
    assert.equal(isAcceptedState('connecting'), false);
  });
});
