import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '../helpers/cluster.js';
import { healthCheck } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

const MASTER = 'levelreplicator.v1.Master';
const STORE = 'levelreplicator.v1.Store';
const STREAM = 'levelreplicator.v1.Master/Subscribe';

/** Every health name a node answers for, with its status. */
async function health(address: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of ['', STORE, MASTER, STREAM]) out[name] = await healthCheck(address, name);
  return out;
}

/**
 * A middle follower (master -> 1 -> 3) as operators see it: its health names, the stream
 * metrics of its downstream followers (the master's names), and its downstream followers'
 * slots, which survive a kill -9 of it.
 */
describe('chained followers: health, metrics and slots of a middle follower', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  let f3: FollowerHandle;
  const killed: FollowerHandle[] = [];
  after(async () => {
    for (const h of [master, f1, f3, ...killed]) await h?.proc.kill('SIGKILL');
  });

  before(async () => {
    // The master has no write yet: follower 1 streams from it but has no history to serve.
    master = await startMaster(path.join(root, 'master'));
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--log-level', 'debug']);
    await f1.proc.waitForLog('connected to master; streaming', 30_000);
  });

  it('health: the replication stream is SERVING on a follower once it can serve it; its Master name never is', async () => {
    assert.deepEqual(await health(master.address), { '': 'SERVING', [STORE]: 'SERVING', [MASTER]: 'SERVING', [STREAM]: 'SERVING' });
    // No history yet: a subscriber would be refused (FOLLOWER_UNAVAILABLE), so not SERVING.
    assert.deepEqual(await health(f1.readAddress), { '': 'SERVING', [STORE]: 'SERVING', [MASTER]: 'NOT_SERVING', [STREAM]: 'NOT_SERVING' });
    f3 = await startFollower(3, path.join(root, 'follower-3'), master.address, ['--upstream', f1.readAddress]);
    const refused = await f3.proc.waitForLog(/has no history yet/, 30_000);
    assert.equal(refused.code, 'FOLLOWER_UNAVAILABLE');

    const put = await runTool('push-data', ['first', 'write', '--master', master.address]);
    assert.equal(put.code, 0, put.stderr);
    await waitFor(async () => ((await healthCheck(f1.readAddress, STREAM)) === 'SERVING' ? true : undefined), 'follower 1 to serve the replication stream', 30_000, 50);
    await waitFor(async () => ((await status(f3.readAddress)).self?.appliedSeq === '1' ? true : undefined), 'follower 3 to apply seq 1 through follower 1', 60_000, 50);
    // Writes still never go to a follower.
    assert.deepEqual(await health(f1.readAddress), { '': 'SERVING', [STORE]: 'SERVING', [MASTER]: 'NOT_SERVING', [STREAM]: 'SERVING' });
    // Follower 3 has a history from its first stream on, and serves the stream too (nobody streams from it).
    assert.equal(await healthCheck(f3.readAddress, STREAM), 'SERVING');
  });
});
