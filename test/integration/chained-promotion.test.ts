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

/** A string as a literal in a RegExp. */
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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

    // replication-status on the middle follower: its own view, then follower 3 in the table
    // (its slot holds none of follower 1's log) or, with --tree, under it.
    await waitFor(async () => ((await status(f1.readAddress)).followers.find((f) => f.followerId === 3)?.appliedSeq === '300' ? true : undefined), 'follower 3 to acknowledge seq 300 to follower 1', 60_000, 50);
    const view = await runTool('replication-status', ['--master', f1.readAddress]);
    assert.equal(view.code, 0, view.stderr);
    const viewLines = view.stdout.split('\n');
    assert.match(viewLines[0], new RegExp(`^follower 1 ${re(f1.readAddress)}  state streaming since .* ago  master ${re(master.address)}$`));
    assert.match(viewLines[1], /^applied 300  master lastSeq 300 \(as last heard\)  lag 0 entries, 0\.0s  sync yes  history [0-9a-f]{32}  checksum [0-9a-f]{8}$/);
    assert.equal(viewLines[2], `upstream ${master.address}  epoch 1`, 'a master without a node id: no chain');
    assert.match(view.stdout, new RegExp(`^3\\s+streaming\\s+300\\s+300\\s+0\\s+0\\.0s\\s+\\S+ ago\\s+\\S+ ago\\s+\\S+\\s+0\\s+0B\\s+yes\\s+\\S+\\s+${re(f3.readAddress)}$`, 'm'));
    const viewTree = await runTool('replication-status', ['--master', f1.readAddress, '--tree']);
    assert.equal(viewTree.code, 0, viewTree.stderr);
    assert.match(viewTree.stdout, new RegExp(`^follower 1 ${re(f1.readAddress)}  streaming  applied 300  lag 0  upstream ${re(master.address)}  epoch 1\n└─ follower 3 ${re(f3.readAddress)}  streaming  applied 300  lag 0  upstream ${re(f1.readAddress)}  epoch 1$`, 'm'));
    const f3Json = JSON.parse((await runTool('replication-status', ['--master', f3.readAddress, '--json'])).stdout) as { follower: Record<string, unknown> };
    const f1Json = JSON.parse((await runTool('replication-status', ['--master', f1.readAddress, '--json'])).stdout) as { follower: Record<string, unknown> };
    assert.deepEqual([f3Json.follower.upstreamAddress, f3Json.follower.epoch, f3Json.follower.seenEpoch, f3Json.follower.chain], [f1.readAddress, 1, 1, [1]]);
    // Both at seq 300 of one history: the same position, checksum included.
    assert.deepEqual([f3Json.follower.historyId, f3Json.follower.appliedSeq, f3Json.follower.appliedChecksum], [f1Json.follower.historyId, '300', f1Json.follower.appliedChecksum]);

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
    // Its own view after the promotion: the new epoch's history and the chain up to the new master.
    const own = await runTool('replication-status', ['--master', f3.readAddress]);
    assert.equal(own.code, 0, own.stderr);
    assert.match(own.stdout, new RegExp(`^follower 3 ${re(f3.readAddress)}  state streaming since .* ago  master ${re(f1.readAddress)}$`, 'm'));
    assert.match(own.stdout, new RegExp(`^upstream ${re(f1.readAddress)}  epoch 2  epochs 1@1 2@301  chain 1$`, 'm'));
    const ownJson = JSON.parse((await runTool('replication-status', ['--master', f3.readAddress, '--json'])).stdout) as { follower: Record<string, unknown> };
    assert.deepEqual(
      [ownJson.follower.masterAddress, ownJson.follower.epochs, ownJson.follower.seenEpoch, ownJson.follower.chain],
      [f1.readAddress, [{ epoch: 1, firstSeq: '1' }, { epoch: 2, firstSeq: '301' }], 2, [1]],
    );
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
