import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdCluster } from '../../src/tools/harness/etcd-process.js';
import { EtcdFailoverCluster, FENCED_LOG } from '../helpers/etcd-failover-cluster.js';
import { addToLedger, rollbackProblems } from '../helpers/failover-oracles.js';
import { LoadGenerator } from '../helpers/load.js';
import { checkStores } from '../helpers/oracles.js';
import { status } from '../helpers/cluster.js';
import { waitFor } from '../helpers/processes.js';
import { answerCodes, TimedWriter } from '../helpers/timed-writer.js';

/**
 * Failover with etcd itself failing (issue: failover on etcd): a three-member etcd on
 * loopback. Losing one member — its raft leader, the worst one to lose — must not stop
 * failover. Losing all of them stops every acknowledgement within the TTL: without etcd
 * no node can know it still holds the lease, so the master fences itself (NO_LEASE) and
 * nobody else can be elected; once etcd is back, writes resume (the old master renews its
 * lease, or a new election is held). Every node is given all three members.
 */
const TTL_S = 2;
const TTL_MS = TTL_S * 1000;
const FAILOVER_BOUND_MS = TTL_MS + 3_000;


/** The member that is etcd's raft leader, as the members agree; fails with what each said. */
async function raftLeaderIndex(etcd: EtcdCluster): Promise<number> {
  let said = '';
  try {
    const found = await waitFor(async () => {
      said = JSON.stringify(await Promise.all(etcd.members.map((m) => m.status())));
      const i = await etcd.leaderIndex();
      return i === undefined ? undefined : { i }; // member 0 is falsy to waitFor
    }, 'etcd members to agree on a raft leader', 10_000, 100);
    return found.i;
  } catch (err) {
    throw new Error(`${(err as Error).message}; the members said ${said}`);
  }
}

describe('failover on etcd: a three-member etcd loses members', { timeout: 150_000 }, () => {
  let etcd: EtcdCluster;
  const clusters: EtcdFailoverCluster[] = [];
  let failed = false;
  before(async () => {
    etcd = await EtcdCluster.start({ members: 3 });
  });
  after(async () => {
    for (const c of clusters) await c.destroy({ keep: failed });
    await etcd?.destroy({ keepRoot: failed });
  });

  it("with etcd's raft leader killed, kill -9 of the master still fails over within TTL + 3 s", async (t) => {
    failed = true;
    const c = await EtcdFailoverCluster.start({ etcd, followers: 2, ttlSeconds: TTL_S, ackFollowers: 1, name: 'one-member-down' });
    clusters.push(c);
    await c.waitConverged(1, 30_000);
    const epoch1 = (await status(c.node(1).address)).epoch;
    const load = new LoadGenerator(c, { writers: 3, batch: 4, prefix: 'load', ackFollowers: 1, timeoutMs: 3_000 });
    load.start();
    try {
      await waitFor(() => load.acked.length >= 200, 'writes acknowledged by the first master', 30_000);
      const raftLeader = await raftLeaderIndex(etcd);
      const fencedBefore = c.node(1).proc!.logs.filter((l) => l.msg === FENCED_LOG).length;
      const etcdKilledAt = performance.now();
      await etcd.killMember(raftLeader);
      await etcd.waitHealthy(); // the two left elect a raft leader of their own
      const etcdRecovered = performance.now() - etcdKilledAt;
      const acked = load.acked.length;
      await waitFor(() => load.acked.length >= acked + 100, 'writes after losing an etcd member', 30_000);
      const fenced = c.node(1).proc!.logs.filter((l) => l.msg === FENCED_LOG).length - fencedBefore;
      const leaderNow = await c.waitForLeader(0, 10_000);
      t.diagnostic(`etcd member ${raftLeader} (raft leader) killed: the two left were healthy after ${etcdRecovered.toFixed(0)} ms; the master fenced itself ${fenced} time(s) meanwhile and is ${leaderNow.id === 1 && leaderNow.epoch === epoch1 ? 'still the leader' : `replaced by node ${leaderNow.id} (epoch ${leaderNow.epoch})`}`);

      const killedAt = performance.now();
      await c.kill(leaderNow.id);
      await waitFor(() => load.acked.some((w) => w.epoch > leaderNow.epoch), 'a write acknowledged by a new master', FAILOVER_BOUND_MS + 10_000, 10);
      const failover = performance.now() - killedAt;
      const leader = await c.waitForLeader(leaderNow.epoch, 10_000);
      t.diagnostic(`kill -9 of node ${leaderNow.id} to the first acknowledged write on node ${leader.id} with 2 of 3 etcd members: ${failover.toFixed(0)} ms (TTL ${TTL_MS} ms)`);
      assert.ok(failover < FAILOVER_BOUND_MS, `a new master took writes ${failover.toFixed(0)} ms after the kill; the bound is TTL + 3 s`);

      await c.restart(leaderNow.id);
      await waitFor(async () => (await status(c.node(leaderNow.id).address)).role === 'follower', 'the old master to rejoin as a follower', 30_000, 50);
      const more = load.acked.length;
      await waitFor(() => load.acked.length >= more + 100, 'writes after the old master rejoined', 30_000);
      await load.stop();
      const lastSeq = await c.waitConverged(leader.id, 60_000);
      const digests = await c.digests(leader.id);
      for (const d of digests) assert.deepEqual({ digest: d.digest, seq: d.seq }, { digest: digests[0].digest, seq: lastSeq }, `${d.node} converged`);
      assert.deepEqual(await c.stop(leader.id), [], 'every node stops cleanly');
      assert.deepEqual(await checkStores(c.stores(leader.id), load, lastSeq), { lost: 0, divergent: 0, problems: [] });
      const rollbacks = rollbackProblems([...c.nodes.values()], load);
      t.diagnostic(rollbacks.summary);
      assert.deepEqual(rollbacks.problems, []);
      await etcd.restartMember(raftLeader);
      failed = false;
    } finally {
      await load.stop();
    }
  });

  it('with every etcd member down the master stops acknowledging within the TTL (NO_LEASE), nobody is elected, and writes resume once etcd is back', async (t) => {
    failed = true;
    await etcd.waitHealthy([0, 1, 2]);
    const c = await EtcdFailoverCluster.start({ etcd, followers: 2, ttlSeconds: TTL_S, ackFollowers: 1, name: 'all-down' });
    clusters.push(c);
    await c.waitConverged(1, 30_000);
    const epoch1 = (await status(c.node(1).address)).epoch;
    const direct = new TimedWriter(c.node(1).address, { prefix: 'direct', ackFollowers: 1 });
    const load = new LoadGenerator(c, { writers: 2, batch: 4, prefix: 'load', ackFollowers: 1, timeoutMs: 3_000 });
    direct.start();
    load.start();
    try {
      await waitFor(() => direct.acked.length >= 50 && load.acked.length >= 100, 'writes acknowledged by the master', 30_000);
      const downAt = performance.now();
      await Promise.all([0, 1, 2].map((i) => etcd.killMember(i)));
      const refused = await waitFor(() => direct.firstAfter(downAt, (a) => a.code === 'NO_LEASE'), 'the master to answer NO_LEASE', TTL_MS + 5_000, 10);
      const lastAck = direct.acked.at(-1)!;
      const loadAcked = load.acked.length;
      // The outage lasts well past the lease's TTL: long enough for any lease to have expired, were etcd up.
      await waitFor(() => performance.now() - downAt > 3 * TTL_MS, 'the outage to last three TTLs', 10 * TTL_MS, 100);
      const during = direct.answers.filter((a) => a.sentAt > refused.at);
      const roles = await c.statuses();
      t.diagnostic(`all etcd members killed: last acknowledgement at ${(lastAck.at - downAt).toFixed(0)} ms, first NO_LEASE at ${(refused.at - downAt).toFixed(0)} ms (TTL ${TTL_MS} ms); answers during the outage: ${answerCodes(during)}`);
      t.diagnostic(`during the outage: ${[...roles].map(([id, s]) => `node ${id} ${s.role || 'master'} epoch ${s.epoch}`).join(', ')}`);
      assert.ok(refused.at - downAt < TTL_MS, `the master stopped acknowledging within the TTL: ${(refused.at - downAt).toFixed(0)} ms`);
      assert.ok(lastAck.at < refused.at, 'no acknowledgement after the first NO_LEASE');
      assert.ok(during.length > 0 && during.every((a) => a.code === 'NO_LEASE'), `every write refused with NO_LEASE during the outage: ${answerCodes(during)}`);
      assert.equal(load.acked.length, loadAcked, 'no node acknowledged anything during the outage');
      assert.ok(c.node(1).proc!.hasLog(FENCED_LOG));
      for (const [id, s] of roles) if (id !== 1) assert.equal(s.role, 'follower', `node ${id} stays a follower without etcd`);

      const backFrom = performance.now();
      await Promise.all([0, 1, 2].map((i) => etcd.restartMember(i, { waitHealthy: false })));
      await etcd.waitHealthy([0, 1, 2]);
      const healthy = performance.now() - backFrom;
      await waitFor(() => load.acked.length > loadAcked, 'a write acknowledged once etcd is back', 30_000, 10);
      const resumed = performance.now() - backFrom;
      // The epoch of the first write acknowledged since names the node that acknowledged it.
      const resumedEpoch = load.acked[loadAcked].epoch;
      const leader = await c.waitForLeader(resumedEpoch - 1, 10_000);
      assert.equal(leader.epoch, resumedEpoch, 'the node that took writes again still leads');
      const how = leader.id === 1 && leader.epoch === epoch1 ? 'node 1 kept its lease and epoch' : `node ${leader.id} was elected with epoch ${leader.epoch} (node 1 had ${epoch1})`;
      t.diagnostic(`etcd restarted: healthy after ${healthy.toFixed(0)} ms, first acknowledged write after ${resumed.toFixed(0)} ms; ${how}`);
      if (leader.id !== 1) {
        await waitFor(async () => (await status(c.node(1).address)).role === 'follower', 'the old master to rejoin as a follower', 30_000, 50);
        t.diagnostic(`node 1 rejoined as a follower ${(performance.now() - backFrom).toFixed(0)} ms after etcd was restarted`);
      }

      const more = load.acked.length;
      await waitFor(() => load.acked.length >= more + 100, 'writes after etcd is back', 30_000);
      await Promise.all([load.stop(), direct.stop()]);
      const lastSeq = await c.waitConverged(leader.id, 60_000);
      const digests = await c.digests(leader.id);
      for (const d of digests) assert.deepEqual({ digest: d.digest, seq: d.seq }, { digest: digests[0].digest, seq: lastSeq }, `${d.node} converged`);
      assert.deepEqual(await c.stop(leader.id), [], 'every node stops cleanly');
      addToLedger(load, direct);
      assert.deepEqual(await checkStores(c.stores(leader.id), load, lastSeq), { lost: 0, divergent: 0, problems: [] });
      const rollbacks = rollbackProblems([...c.nodes.values()], load);
      t.diagnostic(rollbacks.summary);
      assert.deepEqual(rollbacks.problems, []);
      failed = false;
    } finally {
      await Promise.all([load.stop(), direct.stop()]);
    }
  });
});
