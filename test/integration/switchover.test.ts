import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readVia, status } from '../helpers/cluster.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

async function waitFollowerCaughtUp(address: string, id: number): Promise<void> {
  await waitFor(
    async () => {
      const s = await status(address);
      return s.followers.some((f) => f.followerId === id && f.connected && f.appliedSeq === s.lastSeq) ? true : undefined;
    },
    `follower ${id} to catch up with ${address}`,
    60_000,
    50,
  );
}

describe('switchover and fencing', () => {
  const handles: (MasterHandle | FollowerHandle)[] = [];
  after(async () => {
    for (const h of handles) await h.proc.kill('SIGKILL');
  });

  it('switchover under continuous writes (async acks): no acknowledged write lost, writes resume on the new master, the old one follows', async () => {
    const root = tempDir();
    const master = await startMaster(path.join(root, 'master'), undefined, ['--node-id', '9']);
    const f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    const f2 = await startFollower(2, path.join(root, 'follower-2'), master.address);
    handles.push(master, f1, f2);
    const all = [master.address, f1.readAddress, f2.readAddress].join(',');
    const acked: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const r = await runTool('push-data', [`w${i}`, `v${i}`, '--master', all, '--timeout-ms', '10000']);
        if (r.code === 0) acked.push(`w${i}`);
      }
    })();
    await waitFor(() => (acked.length >= 3 ? true : undefined), 'writes before the switchover', 30_000);
    const sw = await runTool('replication-admin', ['switchover', '--to', '1', '--master', master.address, '--nodes', [f1.readAddress, f2.readAddress].join(','), '--json', '--timeout-ms', '10000']);
    assert.equal(sw.code, 0, sw.stderr);
    const out = JSON.parse(sw.stdout) as { epoch: number; pauseMs: number; master: string };
    assert.equal(out.epoch, 2);
    assert.equal(out.master, f1.readAddress);
    const before = acked.length;
    await waitFor(() => (acked.length >= before + 3 ? true : undefined), 'writes on the new master', 30_000);
    writing = false;
    await writer;
    const s = await status(f1.readAddress);
    assert.equal(s.role, 'master');
    for (const k of acked) assert.notEqual((await readVia(f1.readAddress, k)).value, undefined, `acknowledged ${k} is on the new master`);
    await waitFollowerCaughtUp(f1.readAddress, 2);
    await waitFollowerCaughtUp(f1.readAddress, 9);
    process.stderr.write(`switchover pause: ${out.pauseMs} ms\n`);
  });

  it('a SIGSTOPped master, deposed while paused, acknowledges no write after SIGCONT', async () => {
    const root = tempDir();
    const master = await startMaster(path.join(root, 'master'), undefined, ['--node-id', '9']);
    const f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    const f2 = await startFollower(2, path.join(root, 'follower-2'), master.address);
    handles.push(master, f1, f2);
    assert.equal((await runTool('push-data', ['a', '1', '--master', master.address])).code, 0);
    await waitFollowerCaughtUp(master.address, 1);
    await waitFollowerCaughtUp(master.address, 2);
    master.proc.pause();
    const promote = await runTool('replication-admin', ['promote', '1', '--nodes', [f1.readAddress, f2.readAddress, master.address].join(',')]);
    assert.equal(promote.code, 0, promote.stderr);
    master.proc.resume();
    // A client that knows nothing of epoch 2 writes to the old master's address.
    const w = await runTool('push-data', ['b', '2', '--no-redirect', '--master', master.address]);
    assert.notEqual(w.code, 0, `the deposed master acknowledged a write: ${w.stdout}`);
    assert.match(w.stderr, /NOT_MASTER|STALE_EPOCH|UNAVAILABLE/);
    assert.equal((await runTool('push-data', ['c', '3', '--master', f1.readAddress])).code, 0);
    await waitFollowerCaughtUp(f1.readAddress, 2);
    await waitFollowerCaughtUp(f1.readAddress, 9);
    assert.equal((await readVia(f1.readAddress, 'b')).value, undefined);
  });
});
