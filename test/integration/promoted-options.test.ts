import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { status, tsv } from '../helpers/cluster.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/** Polls until the node at address reports follower `id` connected at its last seq. */
async function waitCaughtUp(address: string, id: number): Promise<void> {
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

/**
 * follower-client takes the master options (the same definitions as master-server's) and
 * runs the master with them once it is promoted; before that they change nothing. The
 * switchover finds the master among several --master addresses.
 */
describe('a promoted follower-client runs the master with its master options', () => {
  const root = tempDir();
  const handles: (MasterHandle | FollowerHandle)[] = [];
  after(async () => {
    for (const h of handles) await h.proc.kill('SIGKILL');
  });

  it('--ack-followers, --ack-timeout-ms and --min-followers-max-lag-ms of follower 1 are the defaults of the master it becomes', async () => {
    const master = await startMaster(path.join(root, 'master'), undefined, ['--node-id', '9']);
    handles.push(master);
    const f1 = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--ack-followers', '1', '--ack-timeout-ms', '4000', '--min-followers-max-lag-ms', '12345']);
    const f2 = await startFollower(2, path.join(root, 'follower-2'), master.address);
    handles.push(f1, f2);
    const before = await status(master.address);
    assert.deepEqual([before.defaultAckFollowers, before.defaultAckTimeoutMs, before.minFollowersMaxLagMs], [0, 2000, '10000'], "the master's own defaults: follower 1's options are unused while it follows");
    const put = await runTool('push-data', ['--stdin', '--master', master.address], { input: tsv(20, (i) => `k${i}`, (i) => `v${i}`) });
    assert.equal(put.code, 0, put.stderr);
    await waitCaughtUp(master.address, 1);
    await waitCaughtUp(master.address, 2);

    // The master is found among --master <follower 2>,<master>.
    const sw = await runTool('replication-admin', [
      'switchover', '--to', '1', '--master', `${f2.readAddress},${master.address}`, '--nodes', `${f1.readAddress},${f2.readAddress}`, '--json', '--timeout-ms', '10000',
    ]);
    assert.equal(sw.code, 0, sw.stderr);
    assert.equal((JSON.parse(sw.stdout) as { master: string }).master, f1.readAddress);

    const s1 = await status(f1.readAddress);
    assert.equal(s1.role, 'master');
    assert.deepEqual([s1.defaultAckFollowers, s1.defaultAckTimeoutMs, s1.minFollowersMaxLagMs], [1, 4000, '12345']);

    // A write that names no policy waits for one follower, as the promoted master's default says.
    await waitCaughtUp(f1.readAddress, 2);
    const write = await runTool('push-data', ['--master', f1.readAddress, '--json', 'after', 'promotion']);
    assert.equal(write.code, 0, write.stderr);
    const answer = JSON.parse(write.stdout) as { ackStatus: string; followersRequested: number; followersAcked: number; epoch: number };
    assert.deepEqual([answer.ackStatus, answer.followersRequested, answer.epoch], ['REPLICATED', 1, 2]);
    assert.ok(answer.followersAcked >= 1, write.stdout);
  });
});
