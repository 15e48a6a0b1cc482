import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../../src/common/errors.js';
import { chooseMaster, newestEpoch, parseMasterAddresses, roleOf, type StatusAnswer } from '../../src/tools/master-finder.js';
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

const master = (address: string, over: Partial<StatusResponse__Output> = {}): StatusAnswer => ({ address, status: status(over) });
const follower = (address: string, over: Partial<FollowerSelf__Output> = {}, top: Partial<StatusResponse__Output> = {}): StatusAnswer => ({
  address,
  status: status({ role: 'follower', self: self(over), epoch: 0, seenEpoch: 0, ...top }),
});
const down = (address: string): StatusAnswer => ({ address, error: new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `master at ${address} is unavailable: connection refused`) });

function refused(fn: () => unknown, code: ErrorCode, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isReplicatorError(err), String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('master-finder: --master a,b,c', () => {
  it('parses a comma list: trimmed, repeats dropped, each address checked', () => {
    assert.deepEqual(parseMasterAddresses('127.0.0.1:1'), ['127.0.0.1:1']);
    assert.deepEqual(parseMasterAddresses(' a:1 , b:2,,a:1 '), ['a:1', 'b:2']);
    refused(() => parseMasterAddresses('a:1,nope'), ErrorCode.INVALID_ADDRESS, /^--master: address must be host:port, got "nope" \(in a comma-separated list\)$/);
    refused(() => parseMasterAddresses(' , '), ErrorCode.INVALID_ADDRESS, /--master needs at least one host:port/);
  });

  it('roles: an empty role is an older master; a master that knows of a newer epoch is deposed', () => {
    assert.equal(roleOf(status({ role: '' })), 'master');
    assert.equal(roleOf(status({ role: 'deposed', epoch: 1, seenEpoch: 2 })), 'deposed');
    assert.equal(roleOf(status({ role: 'master', epoch: 1, seenEpoch: 2 })), 'deposed');
    assert.equal(roleOf(status({ role: 'follower', self: self({}) })), 'follower');
  });

  it('the newest epoch is the highest epoch, seen epoch or follower epoch of any answer', () => {
    assert.equal(newestEpoch([]), 0);
    assert.equal(newestEpoch([down('a:1'), master('b:2', { epoch: 2, seenEpoch: 2 })]), 2);
    assert.equal(newestEpoch([master('b:2', { epoch: 2, seenEpoch: 2 }), follower('c:3', { epoch: 4 })]), 4);
    assert.equal(newestEpoch([master('b:2', { role: 'deposed', epoch: 2, seenEpoch: 5 })]), 5);
  });

  it('chooses the master at the highest epoch, whatever the order and whoever is down', () => {
    const found = chooseMaster([follower('f:1', { epoch: 3 }), down('x:9'), master('old:1', { epoch: 2, seenEpoch: 2 }), master('new:2', { epoch: 3, seenEpoch: 3, nodeId: 2 })]);
    assert.equal(found.address, 'new:2');
    assert.equal(found.status.nodeId, 2);
    assert.equal(found.newestEpoch, 3);
    assert.equal(found.answers.length, 4);
  });

  it('a deposed master is never chosen, even at a higher epoch than the others', () => {
    const found = chooseMaster([master('dep:1', { role: 'deposed', epoch: 5, seenEpoch: 6 }), master('m:2', { epoch: 4, seenEpoch: 4 })]);
    assert.equal(found.address, 'm:2');
    assert.equal(found.newestEpoch, 6, 'the deposed master knows of epoch 6: writes carry it');
  });

  it('a tie between two addresses of one node (same node id and history): the first listed', () => {
    const found = chooseMaster([master('localhost:1', { epoch: 2, nodeId: 1 }), master('127.0.0.1:1', { epoch: 2, nodeId: 1 })]);
    assert.equal(found.address, 'localhost:1');
  });

  it('a tie between two different nodes at the same epoch: refused, naming both', () => {
    refused(
      () => chooseMaster([master('a:1', { epoch: 2, nodeId: 1 }), master('b:2', { epoch: 2, nodeId: 2 }), master('c:3', { epoch: 1, nodeId: 3 })]),
      ErrorCode.MASTER_UNAVAILABLE,
      /^2 different nodes answer as master at epoch 2 \(a:1: master at epoch 2 \(node 1\); b:2: master at epoch 2 \(node 2\)\): refusing to choose one/,
    );
    // Same node id, different histories: two clusters.
    refused(
      () => chooseMaster([master('a:1', { epoch: 1 }), master('b:2', { epoch: 1, historyId: Buffer.from('cd', 'hex') })]),
      ErrorCode.MASTER_UNAVAILABLE,
      /different nodes answer as master at epoch 1/,
    );
  });

  it('no master: MASTER_UNAVAILABLE saying what each address answered, and the master they name', () => {
    refused(
      () => chooseMaster([follower('f:1', { followerId: 1, masterAddress: 'm:9', epoch: 2 }), down('d:2'), master('dep:3', { role: 'deposed', epoch: 1, seenEpoch: 2, nodeId: 4, masterAddress: 'm:9' })]),
      ErrorCode.MASTER_UNAVAILABLE,
      new RegExp(
        '^none of the 3 addresses answered as the master \\(' +
          'f:1: follower 1 at epoch 2, following the master at m:9; ' +
          'd:2: master at d:2 is unavailable: connection refused \\[MASTER_UNAVAILABLE\\]; ' +
          'dep:3: deposed master of epoch 1 \\(node 4\\), knows of epoch 2; names the master at m:9\\); ' +
          'they name m:9 as the master: add it to --master$',
      ),
    );
    refused(() => chooseMaster([down('a:1'), down('b:2')]), ErrorCode.MASTER_UNAVAILABLE, /^none of the 2 addresses answered as the master \(a:1: .*; b:2: .*\)$/);
  });
});
