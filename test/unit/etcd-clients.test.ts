import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../../src/common/errors.js';
import type { MemberRecord } from '../../src/coordination/records.js';
import { eligibilities, etcdViewText, type EtcdView } from '../../src/tools/etcd-status.js';
import { MasterWriter, type LeaderAddress, type SendWrite } from '../../src/tools/master-writer.js';
import { fromServiceError, WRITE_NOT_SENT } from '../../src/wire/grpc-status.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';

/**
 * The pure parts of the clients' etcd support: the writer's retries with discovery (a fake
 * cluster and a fake etcd on a fake clock), the transport's "never sent" mark, and the
 * operator view's eligibility column and text.
 */

type Answer = WriteResponse__Output | ReplicatorError;

const ok = (epoch: number, seq = 1): WriteResponse__Output => ({
  firstSeq: String(seq), lastSeq: String(seq), ackStatus: 'COMMITTED', followersRequested: 0, followersAcked: 0, epoch,
});
const refusal = (code: ErrorCode, details: Record<string, string> = {}) => new ReplicatorError(code, `refused with ${code}`, { details });
const noLeader = () => new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, 'etcd names no leader');

/** Nodes answer from scripts (the last answer repeats); etcd names leaders from its own script, one per ask. */
function fakeCluster(nodes: Record<string, Answer[]>, leaders: (LeaderAddress | ReplicatorError)[]) {
  const calls: { address: string; epoch: number | undefined }[] = [];
  let asks = 0;
  let clock = 0;
  const next = <T>(list: T[]): T => (list.length > 1 ? list.shift()! : list[0]);
  const send: SendWrite = async (address, request) => {
    calls.push({ address, epoch: request.epoch });
    const a = next(nodes[address] ?? [refusal(ErrorCode.MASTER_UNAVAILABLE, { sent: 'no' })]);
    if (a instanceof ReplicatorError) throw a;
    return a;
  };
  const locate = async (): Promise<LeaderAddress> => {
    asks++;
    const l = next(leaders);
    if (l instanceof ReplicatorError) throw l;
    return l;
  };
  const opts = { now: () => clock, sleep: async (ms: number) => void (clock += ms), retryIntervalMs: 50, locate };
  return { calls, send, opts, asks: () => asks, clock: () => clock };
}

const WRITE = { writes: [{ mutations: [{ kind: 'PUT' as const, key: Buffer.from('k'), value: Buffer.from('v') }] }] };

async function rejects(p: Promise<unknown>, code: ErrorCode, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isReplicatorError(err), String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('master-writer with discovery (push-data --etcd)', () => {
  it('starts at the leader etcd names and carries its epoch; later writes go there without asking etcd', async () => {
    const f = fakeCluster({ 'a:1': [ok(7)] }, [{ address: 'a:1', epoch: 7 }]);
    const w = new MasterWriter(undefined, f.send, 0, f.opts);
    await w.write(WRITE, 1000);
    await w.write(WRITE, 1000);
    assert.deepEqual(f.calls, [{ address: 'a:1', epoch: 7 }, { address: 'a:1', epoch: 7 }]);
    assert.equal(f.asks(), 1);
  });

  it('a failover: the dead master cannot be reached (never sent), no leader for a while, then the new one takes the write with its epoch', async () => {
    const moves: string[] = [];
    const f = fakeCluster(
      { 'old:1': [ok(3), refusal(ErrorCode.MASTER_UNAVAILABLE, { sent: 'no' })], 'new:2': [ok(4, 9)] },
      [{ address: 'old:1', epoch: 3 }, { address: 'old:1', epoch: 3 }, noLeader(), noLeader(), { address: 'new:2', epoch: 4 }],
    );
    const w = new MasterWriter(undefined, f.send, 0, { ...f.opts, onLocate: (l, from, after) => moves.push(`${from}>${l.address}@${l.epoch} after ${after?.code}`) });
    await w.write(WRITE, 1000);
    assert.equal((await w.write(WRITE, 1000)).firstSeq, '9');
    assert.deepEqual(f.calls.map((c) => `${c.address}@${c.epoch}`), ['old:1@3', 'old:1@3', 'old:1@3', 'new:2@4']);
    assert.deepEqual(moves, ['undefined>old:1@3 after undefined', 'old:1>new:2@4 after MASTER_UNAVAILABLE']);
    assert.equal(w.address, 'new:2');
  });

  it('NO_LEASE before the write (lr-written: no) and WRITES_PAUSED are retried at the leader etcd names then', async () => {
    const f = fakeCluster(
      { 'old:1': [refusal(ErrorCode.WRITES_PAUSED, { written: 'no' }), refusal(ErrorCode.NO_LEASE, { written: 'no' })], 'new:2': [ok(5)] },
      [{ address: 'old:1', epoch: 4 }, { address: 'old:1', epoch: 4 }, { address: 'new:2', epoch: 5 }],
    );
    await new MasterWriter(undefined, f.send, 0, f.opts).write(WRITE, 1000);
    assert.deepEqual(f.calls.map((c) => c.address), ['old:1', 'old:1', 'new:2']);
  });

  it('NOT_MASTER from the leader etcd names while it takes office: retried there, not counted as the one redirect', async () => {
    const f = fakeCluster(
      { 'new:2': [refusal(ErrorCode.NOT_MASTER), refusal(ErrorCode.NOT_MASTER, { masterAddress: 'old:1' }), ok(5)], 'old:1': [refusal(ErrorCode.MASTER_UNAVAILABLE, { sent: 'no' })] },
      [{ address: 'new:2', epoch: 5 }],
    );
    await new MasterWriter(undefined, f.send, 0, f.opts).write(WRITE, 1000);
    assert.deepEqual(f.calls.map((c) => c.address), ['new:2', 'new:2', 'old:1', 'new:2']);
  });

  it('never sent again: an answer lost in transport, a deadline, and (with etcd) a refusal after the write was committed', async () => {
    const lost = fakeCluster({ 'a:1': [refusal(ErrorCode.MASTER_UNAVAILABLE)] }, [{ address: 'a:1', epoch: 2 }]);
    await rejects(new MasterWriter(undefined, lost.send, 0, lost.opts).write(WRITE, 1000), ErrorCode.MASTER_UNAVAILABLE, /^refused with MASTER_UNAVAILABLE$/);
    assert.equal(lost.calls.length, 1);
    const late = fakeCluster({ 'a:1': [refusal(ErrorCode.DEADLINE_EXCEEDED)] }, [{ address: 'a:1', epoch: 2 }]);
    await rejects(new MasterWriter(undefined, late.send, 0, late.opts).write(WRITE, 1000), ErrorCode.DEADLINE_EXCEEDED, /^refused with DEADLINE_EXCEEDED$/);
    assert.equal(late.calls.length, 1);
    const fenced = fakeCluster({ 'a:1': [refusal(ErrorCode.NO_LEASE, { written: 'yes', masterAddress: 'b:2' })] }, [{ address: 'a:1', epoch: 2 }]);
    await rejects(new MasterWriter(undefined, fenced.send, 0, fenced.opts).write(WRITE, 1000), ErrorCode.NO_LEASE, /^refused with NO_LEASE$/);
    assert.equal(fenced.calls.length, 1);
    const deposed = fakeCluster({ 'a:1': [refusal(ErrorCode.NOT_MASTER, { written: 'yes', masterAddress: 'b:2' })] }, [{ address: 'a:1', epoch: 2 }]);
    await rejects(new MasterWriter(undefined, deposed.send, 0, deposed.opts).write(WRITE, 1000), ErrorCode.NOT_MASTER, /committed the write before it refused.*not sent again/);
    assert.equal(deposed.calls.length, 1);
  });

  it('no leader until the deadline: MASTER_UNAVAILABLE saying nothing was written; a write never reached a node', async () => {
    const f = fakeCluster({}, [noLeader()]);
    await rejects(new MasterWriter(undefined, f.send, 0, f.opts).write(WRITE, 500), ErrorCode.MASTER_UNAVAILABLE, /^etcd names no leader \(no master took the write in 450 ms of retries, until the call's deadline; nothing was written\)$/);
    assert.equal(f.calls.length, 0);
  });

  it('NO_LEASE before the write without discovery: retried at the master it names, like a pause', async () => {
    const f = fakeCluster({ 'old:1': [refusal(ErrorCode.NO_LEASE, { written: 'no', masterAddress: 'new:2' })], 'new:2': [ok(3)] }, []);
    await new MasterWriter('old:1', f.send, 0, { ...f.opts, locate: undefined }).write(WRITE, 1000);
    assert.deepEqual(f.calls.map((c) => c.address), ['old:1', 'new:2']);
    const unknown = fakeCluster({ 'a:1': [refusal(ErrorCode.NO_LEASE)] }, []);
    await rejects(new MasterWriter('a:1', unknown.send, 0, { ...unknown.opts, locate: undefined }).write(WRITE, 1000), ErrorCode.NO_LEASE, /^refused with NO_LEASE$/);
    assert.equal(unknown.calls.length, 1, 'a NO_LEASE that does not say it wrote nothing is not retried');
  });
});

describe('a Write that never left the client', () => {
  it('"No connection established" (grpc-js\'s picker, before any connection took the call): sent: no, and says nothing was written', () => {
    const refused = { code: grpc.status.UNAVAILABLE, details: 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:9. Resolution note: ', message: 'x', metadata: new grpc.Metadata() };
    const e = fromServiceError(refused, { role: 'master', address: 'm:1', write: true });
    assert.equal(e.code, ErrorCode.MASTER_UNAVAILABLE);
    assert.deepEqual(e.details, { sent: 'no' });
    assert.ok(e.message.endsWith(`; ${WRITE_NOT_SENT}`), e.message);
    const dropped = fromServiceError({ ...refused, details: 'Connection dropped' }, { role: 'master', address: 'm:1', write: true });
    assert.deepEqual(dropped.details, {});
    assert.match(dropped.message, /may or may not have been committed/);
    assert.deepEqual(fromServiceError(refused, { role: 'master', address: 'm:1' }).details, {}, 'only a Write is marked');
  });
});

const member = (nodeId: number, role: MemberRecord['role'], appliedSeq: bigint): MemberRecord => ({ nodeId, address: `127.0.0.1:${7000 + nodeId}`, role, appliedSeq, appliedChecksum: nodeId, epoch: 3 });

describe('replication-status --etcd: eligibility and the view', () => {
  it('with a leader: each other node as if the leader were gone; the sync set decides who may take over', () => {
    const members = [member(1, 'master', 10n), member(2, 'follower', 10n), member(3, 'follower', 9n), member(4, 'follower', 10n)];
    const v = eligibilities(members, 1, { epoch: 3, members: [3, 4], ackFollowers: 1 }, undefined, true);
    assert.equal(v.get(1), null, 'the leader itself');
    assert.match(v.get(2)!.why, /not in the sync set \[3, 4\]/);
    assert.equal(v.get(2)!.eligible, false);
    assert.deepEqual([v.get(3)!.eligible, v.get(4)!.eligible], [false, true]);
    assert.match(v.get(3)!.why, /node 4 is the better candidate/);
  });

  it('a handover names the only candidate; before any leader only a master may campaign', () => {
    const members = [member(1, 'master', 5n), member(2, 'follower', 5n), member(3, 'follower', 5n)];
    const h = eligibilities(members, 1, undefined, { to: 3, fromEpoch: 3 }, true);
    assert.deepEqual([h.get(2)!.eligible, h.get(3)!.eligible], [false, true]);
    assert.match(h.get(2)!.why, /hands the lead to node 3/);
    const fresh = eligibilities(members, undefined, undefined, undefined, false);
    assert.deepEqual([fresh.get(1)!.eligible, fresh.get(2)!.eligible], [true, false]);
  });

  it('the text: leader, lease, sync set, handover, one row per member', () => {
    const view: EtcdView = {
      cluster: 'c1',
      endpoints: 'http://127.0.0.1:2379',
      leader: { nodeId: 1, address: '127.0.0.1:7001', epoch: 12, leaseId: '694d8ad2c1e3f0a4', leaseTtlS: 4, leaseGrantedTtlS: 5 },
      clusterEpoch: 12,
      syncSet: { epoch: 12, members: [2], ackFollowers: 1 },
      handover: null,
      members: [
        { nodeId: 1, address: '127.0.0.1:7001', role: 'master', appliedSeq: '40', appliedChecksum: 0xab, epoch: 12, leader: true, inSyncSet: false, candidate: null },
        { nodeId: 2, address: '127.0.0.1:7002', role: 'follower', appliedSeq: '40', appliedChecksum: 0xab, epoch: 12, leader: false, inSyncSet: true, candidate: { eligible: true, why: 'the best' } },
      ],
      problems: ['members/9: malformed member record in etcd: not JSON'],
    };
    const text = etcdViewText(view);
    assert.match(text, /^etcd http:\/\/127\.0\.0\.1:2379  cluster c1  last epoch 12\n/);
    assert.match(text, /\nleader    node 1 at 127\.0\.0\.1:7001  epoch 12  lease 694d8ad2c1e3f0a4: 4 s left of 5 s\n/);
    assert.match(text, /\nsync set  \[2\] of epoch 12, --ack-followers 1\n/);
    assert.match(text, /\nhandover  none\n/);
    assert.match(text, /\nWARNING: members\/9: malformed/);
    assert.match(text, /\n1     master    127\.0\.0\.1:7001  40       12     000000ab  no        leader\n/);
    assert.match(text, /\n2     follower  127\.0\.0\.1:7002  40       12     000000ab  yes       yes: the best\n$/);
    const none = etcdViewText({ ...view, leader: null, handover: { to: 2, fromEpoch: 12 }, members: [] });
    assert.match(none, /\nleader    none: no node holds the leader key/);
    assert.match(none, /\nhandover  to node 2, from the leader of epoch 12 \(a switchover is under way\)\n/);
    assert.match(none, /no member records in etcd/);
  });
});
