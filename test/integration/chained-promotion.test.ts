import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { status, tsv } from '../helpers/cluster.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle, type ServerProcess } from '../helpers/processes.js';
import { callUnary, storeClient } from '../../src/wire/rpc-client.js';
import type { DigestResponse__Output } from '../../src/wire/generated/levelreplicator/v1/DigestResponse.js';
import type { TreeNode } from '../../src/tools/status-tree.js';

async function digestOf(address: string): Promise<DigestResponse__Output> {
  const client = storeClient(address);
  try {
    return await callUnary<DigestResponse__Output>((o, cb) => client.Digest({}, o, cb), 10_000, { role: 'follower', address });
  } finally {
    client.close();
  }
}

/** The applied seq a follower reports about itself (Status.self). */
async function appliedSeqOf(address: string): Promise<bigint> {
  return BigInt((await status(address)).self?.appliedSeq ?? '0');
}

const snapshots = (p: ServerProcess) => p.logs.filter((l) => l.msg === 'master is sending a snapshot').length;

/**
 * Promoting the MIDDLE follower of a chain: master -> 1 -> 3, the master is killed (kill -9)
 * and follower 1 is promoted. Follower 3 keeps streaming from the same address, now the
 * master of epoch 2: from its applied seq, no snapshot, no gap. Writes to the new master
 * reach it, the digests are equal, and replication-status --tree shows master 1 -> 3.
 */
describe('promotion of a middle follower of a chain', () => {
  const root = tempDir();
  const handles: (MasterHandle | FollowerHandle)[] = [];
  after(async () => {
    for (const h of handles) await h.proc.kill('SIGKILL');
  });

  it('follower 3 keeps following follower 1, now the master, without a snapshot or a gap', async () => {
    const master = await startMaster(path.join(root, 'master'));
    handles.push(master);
    const f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    handles.push(f1);
    const f3 = await startFollower(3, path.join(root, 'follower-3'), master.address, ['--upstream', f1.readAddress]);
    handles.push(f3);

    const put = await runTool('push-data', ['--stdin', '--master', master.address], { input: tsv(300, (i) => `k${i}`, (i) => `v${i}`) });
    assert.equal(put.code, 0, put.stderr);
    await waitFor(async () => ((await appliedSeqOf(f3.readAddress)) === 300n ? true : undefined), 'follower 3 to apply seq 300', 60_000, 50);
    assert.deepEqual((await status(f3.readAddress)).self?.upstreamAddress, f1.readAddress);
    // Follower 3 was bootstrapped by a snapshot from follower 1; none is sent from here on.
    const snapshotsBefore = snapshots(f3.proc);

    await master.proc.kill('SIGKILL');
    const nodes = [f1.readAddress, f3.readAddress, master.address].join(',');
    const promote = await runTool('replication-admin', ['promote', '1', '--nodes', nodes, '--json']);
    assert.equal(promote.code, 0, promote.stderr);
    const res = JSON.parse(promote.stdout) as { epoch: number; firstSeq: string; appliedSeq: string };
    assert.deepEqual([res.epoch, res.firstSeq, res.appliedSeq], [2, '301', '300']);
    const m1 = await waitFor(async () => {
      const s = await status(f1.readAddress).catch(() => undefined);
      return s?.role === 'master' ? s : undefined;
    }, 'follower 1 to answer as the master', 30_000, 50);
    assert.deepEqual(m1.epochs.map((e) => [e.epoch, e.firstSeq]), [[1, '1'], [2, '301']]);

    // Writes to the new master reach follower 3 through the same address it always streamed from.
    const more = await runTool('push-data', ['--stdin', '--master', f1.readAddress], { input: tsv(200, (i) => `after${i}`, (i) => `epoch2-${i}`) });
    assert.equal(more.code, 0, more.stderr);
    await waitFor(async () => {
      const s = await status(f1.readAddress);
      return s.followers.some((f) => f.followerId === 3 && f.connected && f.appliedSeq === '500') ? true : undefined;
    }, 'follower 3 to apply seq 500 from the new master', 60_000, 50);
    assert.equal(snapshots(f3.proc), snapshotsBefore, 'follower 3 continued from its applied seq, without a snapshot');
    // No gap: the first stream from the new master started at follower 3's next seq (it
    // had applied 300), and every entry after it was checked to chain from the one before.
    const promotedAt = f1.proc.logs.findIndex((l) => l.msg === 'master listening');
    assert.ok(promotedAt > 0, 'follower 1 opened its directory as the master');
    const first = f1.proc.logs.slice(promotedAt).find((l) => l.followerId === 3 && (l.msg === 'follower subscribed' || l.msg === 'sending a snapshot'));
    assert.deepEqual([first?.msg, first?.fromSeq], ['follower subscribed', '301']);

    const s3 = await status(f3.readAddress);
    assert.equal(s3.self?.upstreamAddress, f1.readAddress);
    assert.equal(s3.self?.epoch, 2);
    assert.deepEqual(s3.self?.chain, [1]);
    assert.equal(s3.self?.masterAddress, f1.readAddress, 'follower 3 names the new master, not the dead one it was started with');
    const refused = await runTool('push-data', ['x', 'y', '--no-redirect', '--master', f3.readAddress]);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, new RegExp(`the master is at ${f1.readAddress.replace(/\./g, '\\.')}`));
    const d = await Promise.all([f1.readAddress, f3.readAddress].map(digestOf));
    assert.equal(d[0].seq, '500');
    assert.deepEqual([d[1].digest, d[1].seq, d[1].keys], [d[0].digest, d[0].seq, d[0].keys]);

    // The tree from the new master: master 1 (epoch 2) -> follower 3, reachable, streaming from it.
    const json = await runTool('replication-status', ['--master', f1.readAddress, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const tree = (JSON.parse(json.stdout) as { tree: TreeNode }).tree;
    assert.deepEqual([tree.role, tree.id, tree.address, tree.epoch, tree.appliedSeq], ['master', 1, f1.readAddress, 2, '500']);
    assert.deepEqual(
      tree.children.map((c) => [c.role, c.id, c.address, c.reachable, c.state, c.appliedSeq, c.lagEntries, c.upstream, c.epoch, c.children.length]),
      [['follower', 3, f3.readAddress, true, 'streaming', '500', '0', f1.readAddress, 2, 0]],
    );
    const text = await runTool('replication-status', ['--master', f1.readAddress, '--tree']);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith(`master ${f1.readAddress}  node 1  epoch 2  lastSeq 500`));
    assert.ok(at > 0, text.stdout);
    assert.equal(lines[at + 1], `└─ follower 3 ${f3.readAddress}  streaming  applied 500  lag 0  upstream ${f1.readAddress}  epoch 2`);
  });
});
