import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EtcdCluster } from '../../src/tools/harness/etcd-process.js';
import type { NodeProcess } from '../../src/tools/harness/node-process.js';
import { callUnary, masterClient } from '../../src/wire/rpc-client.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';
import { readVia, status } from '../helpers/cluster.js';
import { startFollower, startMaster, tempDir, waitFor } from '../helpers/processes.js';

/**
 * etcd loses its data (wiped, or replaced by a new cluster) while the nodes keep theirs,
 * and the master-server that bootstraps the new etcd is the node that knows least: it was
 * killed, and the followers elected another leader of a newer epoch and took more writes.
 * The first election in the new etcd goes to the master-server (the bootstrap rule) at an
 * epoch from what it knows, below the one the followers have seen: they refuse it and it is
 * deposed. It must then give the leader key up, so that a follower is elected above the
 * newest epoch and the cluster takes writes again, with every acknowledged write.
 */
const TTL = ['--lease-ttl-s', '2', '--ack-followers', '1', '--sync'];

async function ackedWrite(address: string, key: string): Promise<WriteResponse__Output> {
  const c = masterClient(address);
  try {
    const res = await callUnary<WriteResponse__Output>(
      (o, cb) => c.Write({ writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from(key), value: Buffer.from(key) }] }], ack: { followers: 1, timeoutMs: 2_000 } }, o, cb),
      5_000,
      { role: 'master', address },
    );
    assert.equal(res.ackStatus, 'REPLICATED', `${key} was acknowledged by a follower`);
    return res;
  } finally {
    c.close();
  }
}

describe('failover on etcd: etcd loses its data while the nodes keep theirs', { timeout: 120_000 }, () => {
  const root = tempDir('lr-wiped-');
  const procs: NodeProcess[] = [];
  const etcds: EtcdCluster[] = [];
  let failed = true;
  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await Promise.all(etcds.map((e) => e.destroy()));
    if (!failed) fs.rmSync(root, { recursive: true, force: true });
    else process.stderr.write(`kept ${root}\n`);
  });

  it('a bootstrap leader behind the newest epoch resigns; a follower that has it is elected above it, nothing acknowledged is lost', async () => {
    const dirs = [1, 2, 3].map((id) => path.join(root, `node-${id}`));
    const addresses: string[] = [];
    const start = async (id: number, etcd: EtcdCluster): Promise<NodeProcess> => {
      const flags = ['--etcd', etcd.endpoints, '--cluster', 'wiped', ...TTL];
      if (id === 1) {
        const h = await startMaster(dirs[0], addresses[0], ['--node-id', '1', ...flags]);
        addresses[0] = h.address;
        procs.push(h.proc);
        return h.proc;
      }
      const h = await startFollower(id, dirs[id - 1], addresses[0], [...(addresses[id - 1] ? ['--listen', addresses[id - 1]] : []), ...flags]);
      addresses[id - 1] = h.readAddress;
      procs.push(h.proc);
      return h.proc;
    };
    /** The node answering as master at an epoch above `above`, if one does. */
    const leaderAbove = async (above: number) => {
      for (const [i, a] of addresses.entries()) {
        const s = await status(a).catch(() => undefined);
        if (s && s.role === 'master' && s.seenEpoch <= s.epoch && s.epoch > above) return { id: i + 1, address: a, epoch: s.epoch };
      }
      return undefined;
    };

    // The first etcd: node 1 leads, is killed, node 2 or 3 leads a newer epoch and takes more writes.
    for (const d of ['etcd-a', 'etcd-b']) fs.mkdirSync(path.join(root, d));
    const a = await EtcdCluster.start({ root: path.join(root, 'etcd-a') });
    etcds.push(a);
    const first = await start(1, a);
    await first.waitForLog('failover: elected; this node becomes the master');
    const followers = [await start(2, a), await start(3, a)];
    const keys: string[] = [];
    const e1 = (await waitFor(() => leaderAbove(0), 'node 1 to lead', 20_000, 50)).epoch;
    for (let i = 0; i < 20; i++) await waitFor(() => ackedWrite(addresses[0], `k-a-${i}`).then(() => keys.push(`k-a-${i}`)), `write ${i}`, 20_000, 50);
    await first.kill('SIGKILL');
    const second = await waitFor(() => leaderAbove(e1), 'a follower to be elected after node 1 died', 30_000, 50);
    for (let i = 0; i < 20; i++) {
      await ackedWrite(second.address, `k-b-${i}`);
      keys.push(`k-b-${i}`);
    }
    await Promise.all(followers.map((p) => p.kill('SIGKILL')));
    await a.destroy();

    // A new, empty etcd; the same data directories, node 1 first as an operator would.
    const b = await EtcdCluster.start({ root: path.join(root, 'etcd-b') });
    etcds.push(b);
    const restarted = await start(1, b);
    await restarted.waitForLog('failover: elected; this node becomes the master');
    await start(2, b);
    await start(3, b);
    const third = await waitFor(() => leaderAbove(second.epoch), `a leader above epoch ${second.epoch}`, 30_000, 100);
    assert.notEqual(third.id, 1, 'node 1 lacks the writes of the newer epoch');
    await ackedWrite(third.address, 'k-c-0');
    keys.push('k-c-0');
    for (const address of addresses) {
      for (const k of keys) await waitFor(async () => (await readVia(address, k)).value === k, `${k} on ${address}`, 30_000, 50);
    }
    failed = false;
  });
});
