import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectEtcd, type EtcdConnection } from '../../src/coordination/etcd-connection.js';
import { LeaderLease } from '../../src/coordination/leader-lease.js';
import { LeaderWatch, readLeader } from '../../src/coordination/leader-watch.js';
import { listMembers, MemberPublisher } from '../../src/coordination/member-registry.js';
import type { MemberRecord } from '../../src/coordination/records.js';
import { EtcdCluster } from '../../src/tools/harness/etcd-process.js';
import { sleep, waitFor } from '../../src/tools/harness/polling.js';
import { EtcdCandidate } from '../helpers/etcd-candidate.js';

/**
 * The coordination module against real etcd servers (the harness starts them on free
 * loopback ports): election, epochs, discovery, self-fencing, member records. A leader that
 * dies is a child process killed with SIGKILL: only a dead process stops a lease without
 * telling etcd. Timings are printed (test:diagnostic) and only bounded where the contract
 * says so: a successor after about a TTL, fencing strictly before the lease can expire.
 */
const TTL_S = 2;
const TTL_MS = TTL_S * 1000;
/** How far past the TTL a successor may come: etcd checks expiries every 500 ms, then the campaign's watch fires. */
const ELECTION_SLACK_MS = 3_000;

/** Fails with the etcd members' log tails appended: what went wrong on etcd's side. */
async function withEtcdLogs(etcd: () => EtcdCluster, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    (err as Error).message += `\n${etcd().logTails()}`;
    throw err;
  }
}

/** Candidates' keys under the election prefix: a candidate that waits has one. */
async function candidateKeys(conn: EtcdConnection): Promise<number> {
  return (await conn.client.getAll().prefix(conn.leaderElectionPrefix).keys()).length;
}

describe('etcd coordination: election, discovery, members (one etcd)', () => {
  let etcd: EtcdCluster;
  const conns: EtcdConnection[] = [];
  const connect = (cluster: string) => {
    const c = connectEtcd({ endpoints: etcd.endpoints, cluster });
    conns.push(c);
    return c;
  };
  before(async () => {
    etcd = await EtcdCluster.start();
  });
  after(async () => {
    for (const c of conns) c.close();
    await etcd?.destroy();
  });

  it('one candidate wins and a watcher sees its record and epoch; a second waits, and takes over at once with a higher epoch when the first resigns', (t) =>
    withEtcdLogs(() => etcd, async () => {
      const [ca, cb, cw] = [connect('resign'), connect('resign'), connect('resign')];
      const watch = await LeaderWatch.start(cw);
      assert.equal(watch.current(), undefined, 'no leader yet');
      const a = new LeaderLease(ca, { nodeId: 1, address: '127.0.0.1:1001', ttlSeconds: TTL_S });
      const la = await a.whenElected();
      assert.ok(Number.isSafeInteger(la.epoch) && la.epoch > 0, `an epoch from etcd: ${la.epoch}`);
      assert.ok(a.canAcknowledge());
      assert.deepEqual(await watch.waitFor((l) => l?.epoch === la.epoch, 10_000), { nodeId: 1, address: '127.0.0.1:1001', epoch: la.epoch });
      assert.deepEqual(await readLeader(cw), la);

      const b = new LeaderLease(cb, { nodeId: 2, address: '127.0.0.1:1002', ttlSeconds: TTL_S });
      await waitFor(async () => (await candidateKeys(cb)) === 2, 'the second candidate to campaign');
      assert.equal(b.state, 'campaigning');
      assert.ok(a.canAcknowledge(), 'the first still leads');

      const resignedAt = performance.now();
      await a.resign();
      assert.equal(a.canAcknowledge(), false);
      assert.equal(a.state, 'resigned');
      const lb = await b.whenElected();
      const handover = performance.now() - resignedAt;
      t.diagnostic(`hand-over by resign: ${handover.toFixed(0)} ms (TTL ${TTL_MS} ms)`);
      assert.ok(handover < TTL_MS, `resigning hands over before the TTL: ${handover.toFixed(0)} ms`);
      assert.ok(lb.epoch > la.epoch, `epochs increase: ${la.epoch} then ${lb.epoch}`);
      assert.deepEqual(await watch.waitFor((l) => l?.nodeId === 2 && l.epoch !== undefined, 10_000), lb);
      await b.close();
      await watch.waitFor((l) => l === undefined, 10_000);
      await watch.close();
    }));

  it('a leader killed with SIGKILL is succeeded after about the TTL, with a higher epoch', (t) =>
    withEtcdLogs(() => etcd, async () => {
      const [cb, cw] = [connect('kill'), connect('kill')];
      const watch = await LeaderWatch.start(cw);
      const a = new EtcdCandidate({ endpoints: etcd.endpoints, cluster: 'kill', nodeId: 1, address: '127.0.0.1:2001', ttlSeconds: TTL_S });
      try {
        const elected = await a.waitForEvent('elected');
        await watch.waitFor((l) => l?.epoch === elected.epoch, 10_000);
        const b = new LeaderLease(cb, { nodeId: 2, address: '127.0.0.1:2002', ttlSeconds: TTL_S });
        await waitFor(async () => (await candidateKeys(cb)) === 2, 'the second candidate to campaign');
        await a.waitForEvent('renewed', 10_000, a.events.indexOf(elected));

        const killedAt = performance.now();
        await a.kill();
        const lb = await b.whenElected();
        const took = performance.now() - killedAt;
        t.diagnostic(`election after kill -9 of the leader: ${took.toFixed(0)} ms (TTL ${TTL_MS} ms)`);
        assert.ok(took > TTL_MS / 2, `the successor waited for the lease to expire: ${took.toFixed(0)} ms`);
        assert.ok(took < TTL_MS + ELECTION_SLACK_MS, `the successor came within TTL + ${ELECTION_SLACK_MS} ms: ${took.toFixed(0)} ms`);
        assert.ok(lb.epoch > elected.epoch!, `epochs increase: ${elected.epoch} then ${lb.epoch}`);
        assert.deepEqual(await watch.waitFor((l) => l?.nodeId === 2 && l.epoch !== undefined, 10_000), lb);
        await b.close();
      } finally {
        await a.kill();
        await watch.close();
      }
    }));

  it('members publish positions under their own leases; updates coalesce; a dead member vanishes after its TTL', () =>
    withEtcdLogs(() => etcd, async () => {
      const c = connect('members');
      const big = 2n ** 63n + 5n; // beyond a double's precision: survives only as a decimal string
      const mine: MemberRecord = { nodeId: 1, address: '127.0.0.1:3001', role: 'master', appliedSeq: big, appliedChecksum: 0xdeadbeef, epoch: 7 };
      const p1 = new MemberPublisher(c, mine, { ttlSeconds: TTL_S, minIntervalMs: 200 });
      let puts = 0;
      p1.on('published', () => puts++);
      await p1.flush();
      const other = new EtcdCandidate({
        endpoints: etcd.endpoints, cluster: 'members', nodeId: 2, address: '127.0.0.1:3002', ttlSeconds: TTL_S,
        member: { nodeId: 2, address: '127.0.0.1:3002', role: 'follower', appliedSeq: '41', appliedChecksum: 5, epoch: 7, ackEligible: true },
      });
      try {
        await other.waitForEvent('published');
        const listed = await listMembers(c);
        assert.deepEqual(listed.malformed, []);
        assert.deepEqual(listed.members, [mine, { nodeId: 2, address: '127.0.0.1:3002', role: 'follower', appliedSeq: 41n, appliedChecksum: 5, epoch: 7, ackEligible: true }]);

        const before = puts;
        for (let i = 1n; i <= 50n; i++) p1.update({ appliedSeq: big + i, appliedChecksum: Number(i), ackEligible: true });
        await p1.flush();
        assert.ok(puts - before <= 3, `50 quick updates coalesce into a few puts: ${puts - before}`);
        assert.deepEqual((await listMembers(c)).members[0], { ...mine, appliedSeq: big + 50n, appliedChecksum: 50, ackEligible: true });

        await c.ns.put('members/99').value('{"nodeId":99,"appliedSeq":12}');
        const withBad = await listMembers(c);
        assert.deepEqual(withBad.members.map((m) => m.nodeId), [1, 2], 'a malformed record is never guessed at');
        assert.equal(withBad.malformed.length, 1);
        assert.match(withBad.malformed[0].key, /members\/99$/);

        await other.kill();
        await waitFor(async () => (await listMembers(c)).members.every((m) => m.nodeId !== 2), 'the killed member to vanish', TTL_MS + ELECTION_SLACK_MS);
        await p1.close();
        assert.deepEqual((await listMembers(c)).members, [], 'closing revokes the record at once');
      } finally {
        await other.kill();
        await p1.close();
      }
    }));
});

describe('etcd coordination: self-fencing (one etcd, frozen)', () => {
  let etcd: EtcdCluster;
  const conns: EtcdConnection[] = [];
  before(async () => {
    etcd = await EtcdCluster.start();
  });
  after(async () => {
    for (const c of conns) c.close();
    await etcd?.destroy();
  });

  it('a leader that cannot reach etcd stops acknowledging before its lease can expire, and before a successor is elected', (t) =>
    withEtcdLogs(() => etcd, async () => {
      const [ca, cb] = [0, 1].map(() => connectEtcd({ endpoints: etcd.endpoints, cluster: 'fence' }));
      conns.push(ca, cb);
      const a = new LeaderLease(ca, { nodeId: 1, address: '127.0.0.1:4001', ttlSeconds: TTL_S });
      let fencedEvents = 0;
      a.on('fenced', () => fencedEvents++);
      const renewedAt: number[] = [];
      a.on('renewed', () => renewedAt.push(performance.now()));
      const la = await a.whenElected();
      // The successor's own lease outlives the outage below, so it is still campaigning after it.
      const b = new LeaderLease(cb, { nodeId: 2, address: '127.0.0.1:4002', ttlSeconds: 10 });
      await waitFor(async () => (await candidateKeys(cb)) === 2, 'the second candidate to campaign');
      await waitFor(() => renewedAt.length >= 2, 'the leader to renew its lease twice');
      assert.ok(a.canAcknowledge());

      etcd.pauseMember(0);
      const pausedAt = performance.now();
      let fencedAt = 0;
      try {
        fencedAt = await waitFor(() => (a.canAcknowledge() ? 0 : performance.now()), 'the leader to fence itself', 3 * TTL_MS, 5);
        // Read after fencing: etcd answered nothing since, so this is the send time of the
        // last keepalive it confirmed; it cannot expire the lease before lastSent + TTL.
        const lastSent = a.fence.lastConfirmedSentAt;
        const lastRenewed = renewedAt[renewedAt.length - 1];
        const lead = lastSent + TTL_MS - fencedAt;
        t.diagnostic(
          `fenced ${(fencedAt - pausedAt).toFixed(0)} ms after etcd froze, ${(fencedAt - lastSent).toFixed(0)} ms after the last confirmed keepalive was sent ` +
            `(answer seen ${(fencedAt - lastRenewed).toFixed(0)} ms before); lead before the lease can expire: ${lead.toFixed(0)} ms (TTL ${TTL_MS}, margin ${a.fence.marginMs} ms)`,
        );
        assert.ok(lastSent <= lastRenewed, 'a keepalive is sent before its answer arrives');
        assert.ok(fencedAt < lastSent + TTL_MS, 'fenced strictly before the lease can expire on etcd');
        await waitFor(() => fencedEvents > 0, "the 'fenced' event");
        assert.equal(a.state, 'fenced');

        // The outage lasts until the lease has surely expired on etcd's clock (a fault's
        // duration, not a wait for a result); the leader must stay fenced all along.
        while (performance.now() < lastSent + TTL_MS + 500) {
          assert.equal(a.canAcknowledge(), false, 'a fenced leader stays fenced while etcd is unreachable');
          await sleep(20);
        }
      } finally {
        etcd.resumeMember(0);
      }
      const lb = await b.whenElected();
      const electedAt = performance.now();
      t.diagnostic(`successor elected ${(electedAt - fencedAt).toFixed(0)} ms after the old leader fenced itself`);
      assert.ok(fencedAt < electedAt, 'the old leader fenced itself before the successor was elected');
      assert.ok(lb.epoch > la.epoch, `epochs increase: ${la.epoch} then ${lb.epoch}`);
      await waitFor(() => a.state === 'lost', 'the old leader to learn that its lease is gone', 2 * TTL_MS + ELECTION_SLACK_MS);
      assert.equal(a.canAcknowledge(), false);
      await b.close();
      await a.close();
    }));
});

describe('etcd coordination: a 3-member etcd with one member killed', () => {
  let etcd: EtcdCluster;
  const conns: EtcdConnection[] = [];
  before(async () => {
    etcd = await EtcdCluster.start({ members: 3 });
  });
  after(async () => {
    for (const c of conns) c.close();
    await etcd?.destroy();
  });

  it('the leader keeps its lease through the loss of etcd\'s raft leader, and a successor is elected when it dies', (t) =>
    withEtcdLogs(() => etcd, async () => {
      const cb = connectEtcd({ endpoints: etcd.endpoints, cluster: 'three' });
      conns.push(cb);
      const a = new EtcdCandidate({ endpoints: etcd.endpoints, cluster: 'three', nodeId: 1, address: '127.0.0.1:5001', ttlSeconds: TTL_S });
      try {
        const elected = await a.waitForEvent('elected');
        const b = new LeaderLease(cb, { nodeId: 2, address: '127.0.0.1:5002', ttlSeconds: TTL_S });
        await waitFor(async () => (await candidateKeys(cb)) === 2, 'the second candidate to campaign');

        const raftLeader = await waitFor(() => etcd.leaderIndex().then((i) => (i === undefined ? undefined : { i })), 'the etcd members to agree on a raft leader');
        await etcd.killMember(raftLeader.i);
        const memberKilledAt = performance.now();
        await etcd.waitHealthy();
        const from = a.events.length;
        const renewed = await a.waitForEvent('renewed', 3 * TTL_MS, from);
        const fencedMeanwhile = a.events.slice(from).some((e) => e.event === 'fenced' && e.receivedAt <= renewed.receivedAt);
        t.diagnostic(
          `etcd member ${raftLeader.i} (raft leader) killed; the leader's next confirmed renewal arrived after ${(renewed.receivedAt - memberKilledAt).toFixed(0)} ms` +
            ` (${fencedMeanwhile ? 'it fenced itself meanwhile' : 'it never fenced itself'})`,
        );
        assert.equal(b.state, 'campaigning', 'no second leader while the first renews');

        const killedAt = performance.now();
        await a.kill();
        const lb = await b.whenElected();
        const took = performance.now() - killedAt;
        t.diagnostic(`election after kill -9 of the leader, 2 of 3 etcd members up: ${took.toFixed(0)} ms (TTL ${TTL_MS} ms)`);
        assert.ok(took < TTL_MS + ELECTION_SLACK_MS, `the successor came within TTL + ${ELECTION_SLACK_MS} ms: ${took.toFixed(0)} ms`);
        assert.ok(lb.epoch > elected.epoch!, `epochs increase: ${elected.epoch} then ${lb.epoch}`);

        // The killed member comes back on its data directory and ports, and rejoins.
        await etcd.restartMember(raftLeader.i);
        await etcd.waitHealthy([0, 1, 2]);
        assert.deepEqual(await readLeader(cb), lb);
        await b.close();
      } finally {
        await a.kill();
      }
    }));
});
