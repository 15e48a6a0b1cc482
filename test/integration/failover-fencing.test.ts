import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { EtcdCluster } from '../../src/tools/harness/etcd-process.js';
import { ELECTED_LOG, EtcdFailoverCluster, FENCED_LOG } from '../helpers/etcd-failover-cluster.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { addToLedger, rollbackProblems } from '../helpers/failover-oracles.js';
import { LoadGenerator } from '../helpers/load.js';
import { checkStores } from '../helpers/oracles.js';
import { status } from '../helpers/cluster.js';
import { waitFor } from '../helpers/processes.js';
import { answerCodes, TimedWriter } from '../helpers/timed-writer.js';

/**
 * Self-fencing of a master on etcd (issue: failover on etcd, "two masters can never both
 * acknowledge writes"). A client keeps writing to the master's own address the whole time,
 * with no lookup and no redirect (TimedWriter), and its ledger records when each answer
 * arrived; the master is then frozen past its lease (SIGSTOP), or cut off from etcd alone
 * while clients and followers still reach it (the fault proxy in front of etcd). In both
 * a follower is elected, and the ledger must show no acknowledgement from the old master
 * after that election — and with the link cut, none after the master fenced itself, which
 * must happen within the TTL. Writers that follow the master (LoadGenerator) check that
 * the failover lost nothing.
 */
const TTL_S = 2;
const TTL_MS = TTL_S * 1000;
const ELECTION_BOUND_MS = TTL_MS + 3_000;

/** The first of nodes `ids` to log its election (after the marks), and when that line arrived. */
async function waitElected(c: EtcdFailoverCluster, ids: number[], from: Map<number, number>): Promise<{ id: number; at: number }> {
  return Promise.any(ids.map(async (id) => ({ id, at: (await c.node(id).proc!.waitForLogAt(ELECTED_LOG, 30_000, from.get(id) ?? 0)).at })));
}

/** Where each node's log is now: waits from here on see only new lines. */
function logMarks(c: EtcdFailoverCluster): Map<number, number> {
  return new Map([...c.nodes.values()].map((n) => [n.id, n.proc?.logs.length ?? 0]));
}

/** Waits until node 1 answers Status as a follower; returns how long after `since` that was seen (ms). */
async function rejoined(c: EtcdFailoverCluster, since: number): Promise<number> {
  await waitFor(async () => (await status(c.node(1).address)).role === 'follower', 'the old master to rejoin as a follower', 30_000, 20);
  return performance.now() - since;
}

/** After the fault is over and node 1 rejoined: more writes, everything converges, and the ledgers hold on the stopped stores. */
async function settle(t: TestContext, c: EtcdFailoverCluster, leader: number, load: LoadGenerator, direct: TimedWriter): Promise<void> {
  const acked = load.acked.length;
  await waitFor(() => load.acked.length >= acked + 100, 'more writes on the new master', 30_000);
  await Promise.all([load.stop(), direct.stop()]);
  const lastSeq = await c.waitConverged(leader, 60_000);
  const digests = await c.digests(leader);
  for (const d of digests) assert.deepEqual({ digest: d.digest, seq: d.seq }, { digest: digests[0].digest, seq: lastSeq }, `${d.node} converged`);
  assert.deepEqual(await c.stop(leader), [], 'every node stops cleanly');
  addToLedger(load, direct);
  assert.deepEqual(await checkStores(c.stores(leader), load, lastSeq), { lost: 0, divergent: 0, problems: [] });
  const rollbacks = rollbackProblems([...c.nodes.values()], load);
  t.diagnostic(rollbacks.summary);
  assert.deepEqual(rollbacks.problems, []);
}

describe('failover on etcd: a master that cannot renew its lease acknowledges nothing', { timeout: 150_000 }, () => {
  let etcd: EtcdCluster;
  const clusters: EtcdFailoverCluster[] = [];
  const proxies: FaultProxy[] = [];
  let failed = false;
  before(async () => {
    etcd = await EtcdCluster.start();
  });
  after(async () => {
    for (const p of proxies) await p.close();
    for (const c of clusters) await c.destroy({ keep: failed });
    await etcd?.destroy({ keepRoot: failed });
  });

  it('SIGSTOP past the TTL, then SIGCONT: no write sent to the old master is acknowledged after the new leader was elected', async (t) => {
    failed = true;
    const c = await EtcdFailoverCluster.start({ etcd, followers: 2, ttlSeconds: TTL_S, ackFollowers: 1, name: 'sigstop' });
    clusters.push(c);
    await c.waitConverged(1, 30_000);
    const epoch1 = (await status(c.node(1).address)).epoch;
    const direct = new TimedWriter(c.node(1).address, { prefix: 'direct', ackFollowers: 1 });
    const load = new LoadGenerator(c, { writers: 2, batch: 4, prefix: 'load', ackFollowers: 1, timeoutMs: 3_000 });
    direct.start();
    load.start();
    try {
      await waitFor(() => direct.acked.length >= 50 && load.acked.length >= 100, 'writes acknowledged by the first master', 30_000);
      const marks = logMarks(c);
      const pausedAt = performance.now();
      c.node(1).proc!.pause();
      const elected = await waitElected(c, [2, 3], marks);
      const election = elected.at - pausedAt;
      // Frozen until the new leader has acknowledged writes of its own: two masters' worth of acknowledgements exist.
      await waitFor(() => load.acked.filter((w) => w.epoch > epoch1).length >= 40, 'writes on the new leader', 30_000);
      const resumedAt = performance.now();
      c.node(1).proc!.resume();
      const rejoin = await rejoined(c, resumedAt);
      // The client keeps writing to the old master's address after SIGCONT, until it has had answers.
      await waitFor(() => direct.answers.filter((a) => a.sentAt > resumedAt).length >= 20, 'answers from the old master after SIGCONT', 30_000);

      const lastAck = direct.acked.at(-1)!;
      const late = direct.acked.filter((a) => a.at >= elected.at);
      const after = direct.answers.filter((a) => a.sentAt > resumedAt);
      t.diagnostic(`frozen ${(resumedAt - pausedAt).toFixed(0)} ms; node ${elected.id} elected ${election.toFixed(0)} ms after SIGSTOP (TTL ${TTL_MS} ms)`);
      t.diagnostic(`the old master's last acknowledgement arrived ${(lastAck.at - pausedAt).toFixed(0)} ms after SIGSTOP (${direct.acked.length} in all); answers to writes sent after SIGCONT: ${answerCodes(after)}`);
      t.diagnostic(`the old master answered as a follower ${rejoin.toFixed(0)} ms after SIGCONT`);
      assert.ok(election < ELECTION_BOUND_MS, `a successor within TTL + 3 s: ${election.toFixed(0)} ms`);
      assert.deepEqual(late.map((a) => a.key), [], 'no acknowledgement from the old master after the new leader was elected');
      assert.ok(lastAck.at < resumedAt, 'nothing acknowledged after SIGCONT');
      assert.ok(after.every((a) => !a.acked && a.epoch === undefined), 'every write sent after SIGCONT was refused');
      const leader = await c.waitForLeader(epoch1, 10_000);
      assert.equal(leader.id, elected.id);
      await settle(t, c, leader.id, load, direct);
      failed = false;
    } finally {
      await Promise.all([load.stop(), direct.stop()]);
    }
  });

  it("cutting the master's link to etcd alone: it fences itself within the TTL (NO_LEASE) and a follower takes over", async (t) => {
    failed = true;
    const proxy = await FaultProxy.start(etcd.member(0).clientUrl.replace('http://', ''));
    proxies.push(proxy);
    // Only node 1 reaches etcd through the proxy; clients and followers still reach node 1.
    const c = await EtcdFailoverCluster.start({ etcd, followers: 2, ttlSeconds: TTL_S, ackFollowers: 1, name: 'etcd-cut', etcdFor: (id) => (id === 1 ? `http://${proxy.address}` : undefined) });
    clusters.push(c);
    await c.waitConverged(1, 30_000);
    const epoch1 = (await status(c.node(1).address)).epoch;
    const direct = new TimedWriter(c.node(1).address, { prefix: 'direct', ackFollowers: 1 });
    const load = new LoadGenerator(c, { writers: 2, batch: 4, prefix: 'load', ackFollowers: 1, timeoutMs: 3_000 });
    direct.start();
    load.start();
    try {
      await waitFor(() => direct.acked.length >= 50 && load.acked.length >= 100, 'writes acknowledged by the first master', 30_000);
      const marks = logMarks(c);
      const cutAt = performance.now();
      proxy.blackhole(); // open connections go silent, new ones never reach etcd: a dropped route
      const refused = await waitFor(() => direct.firstAfter(cutAt, (a) => a.code === 'NO_LEASE'), 'the old master to answer NO_LEASE', TTL_MS + 5_000, 10);
      const fenced = await c.node(1).proc!.waitForLogAt(FENCED_LOG, 10_000, marks.get(1));
      const elected = await waitElected(c, [2, 3], marks);
      await waitFor(() => load.acked.filter((w) => w.epoch > epoch1).length >= 40, 'writes on the new leader', 30_000);
      const lastAck = direct.acked.at(-1)!;
      const late = direct.acked.filter((a) => a.at >= refused.at);
      t.diagnostic(
        `after the cut: last acknowledgement from the old master at ${(lastAck.at - cutAt).toFixed(0)} ms, first NO_LEASE at ${(refused.at - cutAt).toFixed(0)} ms, ` +
          `"fenced" logged at ${(fenced.at - cutAt).toFixed(0)} ms; node ${elected.id} elected at ${(elected.at - cutAt).toFixed(0)} ms (TTL ${TTL_MS} ms)`,
      );
      assert.ok(refused.at - cutAt < TTL_MS, `the master stopped acknowledging within the TTL: ${(refused.at - cutAt).toFixed(0)} ms`);
      assert.ok(fenced.at < elected.at, 'it fenced itself before anyone else was elected');
      assert.deepEqual(late.map((a) => a.key), [], 'no acknowledgement after the first NO_LEASE: the fence holds while etcd is unreachable');
      assert.ok(elected.at - cutAt < ELECTION_BOUND_MS, `a successor within TTL + 3 s: ${(elected.at - cutAt).toFixed(0)} ms`);
      const cutOff = direct.answers.filter((a) => a.sentAt > refused.at);
      t.diagnostic(`answers to writes sent to the old master while cut off: ${answerCodes(cutOff)}`);
      assert.ok(cutOff.length > 0 && cutOff.every((a) => !a.acked), 'still refused while cut off');

      const healedFrom = direct.answers.length;
      const healedAt = performance.now();
      proxy.heal();
      const leader = await c.waitForLeader(epoch1, 10_000);
      assert.equal(leader.id, elected.id);
      t.diagnostic(`the old master answered as a follower ${(await rejoined(c, healedAt)).toFixed(0)} ms after the link was healed`);
      await waitFor(() => direct.answers.length >= healedFrom + 20, 'answers from the old master after the link is back', 30_000);
      assert.deepEqual(direct.answers.slice(healedFrom).filter((a) => a.acked).map((a) => a.key), [], 'nothing acknowledged by the old master once it reaches etcd again');
      await settle(t, c, leader.id, load, direct);
      failed = false;
    } finally {
      await Promise.all([load.stop(), direct.stop()]);
    }
  });
});
