import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseCandidate, isAhead, type CandidateView, type SyncSet } from '../../src/node/failover-eligibility.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';

const node = (nodeId: number, appliedSeq: number, role: CandidateView['role'] = 'follower'): CandidateView => ({ nodeId, role, appliedSeq: BigInt(appliedSeq) });
const sync = (members: number[], ackFollowers: number): SyncSet => ({ epoch: 7, members, ackFollowers });

describe('failover eligibility: who may campaign for the leader key', () => {
  it('without a sync set the most advanced node visible campaigns; ties go to the master role, then the lower id', () => {
    assert.equal(chooseCandidate(node(2, 10), [node(3, 9)], undefined).eligible, true);
    const behind = chooseCandidate(node(3, 9), [node(2, 10)], undefined);
    assert.equal(behind.eligible, false);
    assert.match(behind.why, /node 2 .*applied seq 10, this node 9/);
    // Equal positions: exactly one of the two campaigns.
    assert.equal(chooseCandidate(node(2, 10), [node(3, 10)], undefined).eligible, true);
    assert.equal(chooseCandidate(node(3, 10), [node(2, 10)], undefined).eligible, false);
    assert.equal(chooseCandidate(node(5, 10, 'master'), [node(2, 10)], undefined).eligible, true);
    assert.equal(chooseCandidate(node(2, 10), [node(5, 10, 'master')], undefined).eligible, false);
    // Alone: eligible.
    assert.equal(chooseCandidate(node(4, 0), [], undefined).eligible, true);
  });

  it('isAhead is a strict order: never both ways, never for a node against itself', () => {
    const all = [node(1, 5), node(2, 5), node(3, 6), node(4, 5, 'master'), node(5, 6, 'deposed')];
    for (const a of all) {
      assert.equal(isAhead(a, a), false);
      for (const b of all) if (a !== b) assert.notEqual(isAhead(a, b), isAhead(b, a), `${a.nodeId} vs ${b.nodeId}`);
    }
  });

  it('before any leader was elected a follower campaigns only with a master-server in view', () => {
    const r = chooseCandidate(node(2, 0), [], undefined, false);
    assert.equal(r.eligible, false, 'an empty follower started first never deposes the master that holds the data');
    assert.match(r.why, /no master-server answers/);
    assert.equal(chooseCandidate(node(2, 0), [node(3, 0)], undefined, false).eligible, false);
    assert.equal(chooseCandidate(node(1, 0, 'master'), [node(2, 0)], undefined, false).eligible, true);
    // A master-server behind its followers (etcd lost its data): the follower ahead is chosen.
    assert.equal(chooseCandidate(node(1, 50, 'master'), [node(2, 80)], undefined, false).eligible, false);
    assert.equal(chooseCandidate(node(2, 80), [node(1, 50, 'master')], undefined, false).eligible, true);
  });

  it('with acknowledgements from N followers only sync set members campaign, and only with |S| - N + 1 of them visible', () => {
    // S = {2, 3}, N = 1: any acknowledged write is on 2 or 3; seeing both, the more advanced has all.
    const out = chooseCandidate(node(4, 100), [node(2, 10), node(3, 9)], sync([2, 3], 1));
    assert.equal(out.eligible, false, 'a node outside the set never campaigns, however far ahead');
    assert.match(out.why, /not in the sync set \[2, 3\]/);
    assert.equal(chooseCandidate(node(2, 10), [node(3, 9), node(4, 100)], sync([2, 3], 1)).eligible, true, 'a non-member ahead does not block a member');
    assert.equal(chooseCandidate(node(3, 9), [node(2, 10)], sync([2, 3], 1)).eligible, false);
    // 3 alone cannot tell whether 2 held a write 3 lacks: it waits.
    const alone = chooseCandidate(node(3, 9), [], sync([2, 3], 1));
    assert.equal(alone.eligible, false);
    assert.match(alone.why, /only 1 of the sync set's 2 members .* at least 2 are needed/);
    // N = 2 of S = {2, 3}: each acknowledged write is on both; either alone has them all.
    assert.equal(chooseCandidate(node(3, 9), [], sync([2, 3], 2)).eligible, true);
    // S = {2, 3, 4}, N = 2: any two of them suffice.
    assert.equal(chooseCandidate(node(3, 9), [node(4, 8)], sync([2, 3, 4], 2)).eligible, true);
    assert.equal(chooseCandidate(node(3, 9), [], sync([2, 3, 4], 2)).eligible, false);
  });

  it('a sync set of async acknowledgements, or an empty one, constrains nothing', () => {
    assert.equal(chooseCandidate(node(4, 10), [], sync([2, 3], 0)).eligible, true);
    assert.equal(chooseCandidate(node(4, 10), [], sync([], 1)).eligible, true);
  });

  it('the master counts only admitted followers for acknowledgements (the sync set filter)', () => {
    const registry = new FollowerRegistry();
    const admitted = new Set<number>();
    registry.setAckFilter((id) => admitted.has(id));
    for (const id of [2, 3]) {
      const r = registry.attach(id, 'peer', 'read', true);
      registry.startStream(r, 1n, 0n);
      registry.recordSent(r, 10n, 0);
      registry.ack(id, 10n, 10n);
    }
    assert.equal(registry.durableAckCount(10n), 0, 'nobody counts before the set names them');
    let advanced = 0;
    registry.onAdvance(() => advanced++);
    admitted.add(2);
    registry.admitted(2);
    assert.ok(advanced > 0, 'waiting writes look again once a follower is admitted');
    assert.equal(registry.durableAckCount(10n), 1);
    registry.setAckFilter(undefined);
    assert.equal(registry.durableAckCount(10n), 2);
  });
});
