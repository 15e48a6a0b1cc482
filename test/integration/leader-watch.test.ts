import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectEtcd, type EtcdConnection } from '../../src/coordination/etcd-connection.js';
import { LeaderLease } from '../../src/coordination/leader-lease.js';
import { LeaderWatch, readLeader } from '../../src/coordination/leader-watch.js';
import { EtcdCluster } from '../../src/tools/harness/etcd-process.js';

/**
 * Discovery when candidates campaign at the same instant (two followers that both see
 * themselves as the best candidate, say, after the master died). etcd3's ElectionObserver
 * took the last of the keys put in one watch response as the leader, then watched only
 * that key: a watcher named the younger candidate, without epoch, and never saw the real
 * leader announce its epoch, so a follower waited forever instead of following it. Found
 * by failover-etcd-outage.test.ts; this is the narrow reproduction.
 */
const TTL_S = 2;
const ROUNDS = 10;

describe('leader watch: candidates that campaign at once', { timeout: 60_000 }, () => {
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

  it('every watcher names the candidate etcd elected, with its epoch, and then its successor', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const cluster = `at-once-${round}`;
      const watcherConn = connect(cluster);
      const watch = await LeaderWatch.start(watcherConn);
      // Connections in use already, so both keys are put within a millisecond or two, as
      // by two long-running nodes: etcd then sends both puts in one watch response.
      const candidates = [connect(cluster), connect(cluster)];
      await Promise.all(candidates.map((c) => c.ns.get('warm-up').string()));
      const [a, b] = candidates.map((c, i) => new LeaderLease(c, { nodeId: i + 1, address: `127.0.0.1:${1001 + i}`, ttlSeconds: TTL_S }));
      try {
        const first = await Promise.any([a.whenElected(), b.whenElected()]);
        assert.deepEqual(await readLeader(watcherConn), first, `round ${round}: etcd names the elected one`);
        assert.deepEqual(await watch.waitFor((l) => l?.epoch !== undefined, 5_000), first, `round ${round}: the watcher names the elected one with its epoch`);
        const [winner, loser] = first.nodeId === 1 ? [a, b] : [b, a];
        await winner.close();
        const second = await loser.whenElected();
        assert.deepEqual(await watch.waitFor((l) => l?.epoch === second.epoch, 5_000), second, `round ${round}: the watcher follows the successor`);
        await loser.close();
        assert.equal(await watch.waitFor((l) => l === undefined, 5_000), undefined, `round ${round}: no leader once both resigned`);
      } finally {
        await a.close();
        await b.close();
        await watch.close();
      }
    }
  });
});
