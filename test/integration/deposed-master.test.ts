import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { status } from '../helpers/cluster.js';
import { healthCheck } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

describe('a deposed master without --node-id', () => {
  const handles: (MasterHandle | FollowerHandle)[] = [];
  after(async () => {
    for (const h of handles) await h.proc.kill('SIGKILL');
  });

  it('stays up, serves reads, refuses writes naming the new master, and its write service reports NOT_SERVING', async () => {
    const root = tempDir();
    const master = await startMaster(path.join(root, 'master'));
    const f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    handles.push(master, f1);
    assert.equal((await runTool('push-data', ['k', 'v', '--master', master.address])).code, 0);
    assert.equal(await healthCheck(master.address, 'levelreplicator.v1.Master'), 'SERVING');

    const sw = await runTool('replication-admin', ['switchover', '--to', '1', '--master', master.address, '--nodes', f1.readAddress, '--json', '--timeout-ms', '10000']);
    assert.equal(sw.code, 0, sw.stderr);
    await waitFor(async () => ((await status(master.address)).role === 'deposed' ? true : undefined), 'the old master to report itself deposed', 30_000);
    // Checked every 250 ms by the node: polled, not slept for.
    await waitFor(async () => ((await healthCheck(master.address, 'levelreplicator.v1.Master')) === 'NOT_SERVING' ? true : undefined), 'the write service to report NOT_SERVING', 10_000);
    assert.equal(await healthCheck(master.address), 'SERVING', 'the node itself still runs');
    assert.equal(await healthCheck(master.address, 'levelreplicator.v1.Store'), 'SERVING', 'it still serves reads');

    const refused = await runTool('push-data', ['after', 'v', '--master', master.address, '--no-redirect']);
    assert.notEqual(refused.code, 0, 'a deposed master takes no write');
    assert.match(refused.stderr, /NOT_MASTER/);
    assert.ok(refused.stderr.includes(f1.readAddress), `the refusal names the new master: ${refused.stderr}`);
    assert.equal((await runTool('get-data', ['--address', master.address, 'k'])).stdout.trim(), 'v');
  });
});
