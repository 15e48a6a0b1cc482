import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../../src/common/errors.js';
import type { StatusAnswer } from '../../src/tools/master-finder.js';
import { afterRedirect, firstStep, namedMaster, type FirstStep } from '../../src/tools/master-locator.js';
import type { FollowerSelf__Output } from '../../src/wire/generated/levelreplicator/v1/FollowerSelf.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';

function status(over: Partial<StatusResponse__Output>): StatusResponse__Output {
  return {
    firstSeq: '1', lastSeq: '10', historyId: Buffer.from('ab', 'hex'), epoch: 1, masterTimeMs: '0', followers: [], writeRate: 0, minFollowers: 0,
    minFollowersMaxLagMs: '0', goodFollowers: 0, acceptingWrites: true, defaultAckFollowers: 0, defaultAckTimeoutMs: 0, role: 'master', self: null, logBytes: '0',
    version: '0.1.0', nodeId: 0, epochs: [], masterAddress: '', seenEpoch: 1, ...over,
  };
}

function self(over: Partial<FollowerSelf__Output>): FollowerSelf__Output {
  return {
    followerId: 2, masterAddress: 'm:1', state: 'STREAMING', appliedSeq: '10', masterLastSeq: '10', lagEntries: '0', lagMs: '0', sinceMs: '0',
    historyId: Buffer.from('ab', 'hex'), durable: true, timeMs: '0', lastError: '', upstreamAddress: 'm:1', epoch: 1, appliedChecksum: 0, chain: [], ...over,
  };
}

const master = (address: string, over: Partial<StatusResponse__Output> = {}): StatusAnswer => ({ address, status: status({ masterAddress: address, ...over }) });
const follower = (address: string, over: Partial<FollowerSelf__Output> = {}): StatusAnswer => ({
  address,
  status: status({ role: 'follower', self: self(over), epoch: 0, seenEpoch: 0 }),
});
const down = (address: string): StatusAnswer => ({ address, error: new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `master at ${address} is unavailable: connection refused`) });
const denied = (address: string): StatusAnswer => ({ address, error: new ReplicatorError(ErrorCode.UNAUTHENTICATED, `${address} refused the call: no token`) });

function refused(fn: () => unknown, code: ErrorCode, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isReplicatorError(err), String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

function redirectOf(step: FirstStep): Extract<FirstStep, { redirect: unknown }> {
  assert.ok('redirect' in step, `expected a redirect, got the master at ${'master' in step ? step.master.address : ''}`);
  return step;
}

describe('master-locator: the master for a read or an admin call', () => {
  it('one address that is the master: used, no redirect', () => {
    const step = firstStep([master('m:1', { epoch: 2, seenEpoch: 2 })]);
    assert.ok('master' in step);
    assert.equal(step.master.address, 'm:1');
    assert.equal(step.master.newestEpoch, 2);
  });

  it('one follower: followed once to the master it names, which must answer as the master of the newest epoch', () => {
    const step = redirectOf(firstStep([follower('f:2', { masterAddress: 'm:1', epoch: 2 })]));
    assert.deepEqual([step.redirect.from, step.redirect.to, step.newestEpoch], ['f:2', 'm:1', 2]);
    assert.match(step.redirect.reason, /^f:2: follower 2 at epoch 2, following the master at m:1$/);
    const found = afterRedirect(step, master('m:1', { epoch: 2, seenEpoch: 2 }));
    assert.equal(found.address, 'm:1');
    assert.deepEqual(found.redirect, step.redirect);
    // The named node is not the master (any more), or is one of an older epoch: no second redirect.
    refused(() => afterRedirect(step, follower('m:1', { masterAddress: 'x:9' })), ErrorCode.MASTER_UNAVAILABLE, /does not answer as the master: m:1: follower 2.*\(not following a second redirect\)$/);
    refused(() => afterRedirect(step, master('m:1', { epoch: 1 })), ErrorCode.MASTER_UNAVAILABLE, /m:1: master at epoch 1 \(epoch 1, older than epoch 2\)/);
    refused(() => afterRedirect(step, down('m:1')), ErrorCode.MASTER_UNAVAILABLE, /master at m:1 is unavailable/);
    refused(() => afterRedirect(step, denied('m:1')), ErrorCode.UNAUTHENTICATED, /no token/);
  });

  it('one deposed master: followed to the master it names; one naming none: NOT_MASTER', () => {
    const step = redirectOf(firstStep([master('old:1', { role: 'deposed', epoch: 1, seenEpoch: 2, masterAddress: 'new:2' })]));
    assert.deepEqual([step.redirect.to, step.newestEpoch], ['new:2', 2]);
    refused(() => firstStep([master('old:1', { role: 'deposed', epoch: 1, seenEpoch: 2, masterAddress: 'old:1' })]), ErrorCode.NOT_MASTER, /names no master to go to/);
  });

  it('one address that does not answer: its error, as asked', () => {
    refused(() => firstStep([down('m:1')]), ErrorCode.MASTER_UNAVAILABLE, /^master at m:1 is unavailable/);
    refused(() => firstStep([denied('m:1')]), ErrorCode.UNAUTHENTICATED, /no token/);
  });

  it('several: the master at the highest epoch, as push-data finds it; none is MASTER_UNAVAILABLE (no redirect)', () => {
    const step = firstStep([follower('f:2', { epoch: 2, masterAddress: 'm:1' }), down('d:3'), master('m:1', { epoch: 2, seenEpoch: 2 })]);
    assert.ok('master' in step);
    assert.equal(step.master.address, 'm:1');
    refused(() => firstStep([follower('f:2', { masterAddress: 'm:1' }), down('d:3')]), ErrorCode.MASTER_UNAVAILABLE, /none of the 2 addresses answered as the master.*add it to --master/);
    refused(() => firstStep([denied('a:1'), denied('b:2')]), ErrorCode.UNAUTHENTICATED, /every address refused the status call/);
  });

  it('several: a master behind the newest epoch another address knows is not used; the master of that epoch is asked once', () => {
    // The old master (epoch 1) missed its deposition; follower 2 follows the master of epoch 2.
    const step = redirectOf(firstStep([master('old:1', { epoch: 1, seenEpoch: 1 }), follower('f:2', { epoch: 2, masterAddress: 'new:3' })]));
    assert.deepEqual([step.redirect.from, step.redirect.to, step.newestEpoch], ['old:1', 'new:3', 2]);
    assert.match(step.redirect.reason, /^old:1 is the master of epoch 1, but f:2 knows of epoch 2$/);
    assert.equal(afterRedirect(step, master('new:3', { epoch: 2, seenEpoch: 2 })).address, 'new:3');
    // Nobody of the newest epoch names another master: refused, not read on the stale one.
    refused(
      () => firstStep([master('old:1', { epoch: 1, seenEpoch: 1 }), follower('f:2', { epoch: 2, masterAddress: 'old:1' })]),
      ErrorCode.MASTER_UNAVAILABLE,
      /old:1 is the master of epoch 1, but f:2 knows of epoch 2 and names no other master: add the master of epoch 2 to --master/,
    );
  });

  it('namedMaster: what a follower or deposed master names, never itself, never from a master', () => {
    assert.equal(namedMaster(follower('f:2', { masterAddress: 'm:1' })), 'm:1');
    assert.equal(namedMaster(follower('f:2', { masterAddress: 'f:2' })), undefined);
    assert.equal(namedMaster(master('m:1', { masterAddress: 'x:1' })), undefined);
    assert.equal(namedMaster(down('d:1')), undefined);
  });
});
