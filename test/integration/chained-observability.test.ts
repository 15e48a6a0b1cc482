import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { status, tsv } from '../helpers/cluster.js';
import { healthCheck, metric, metricNames, scrapeMetrics } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

const MASTER = 'levelreplicator.v1.Master';
const STORE = 'levelreplicator.v1.Store';
const STREAM = 'levelreplicator.v1.Master/Subscribe';

const OPERATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/operations.md');

/** The metrics of docs/operations.md's table of what a follower exports for its downstream followers. */
function documentedDownstreamMetrics(): string[] {
  const text = fs.readFileSync(OPERATIONS, 'utf8');
  const from = text.indexOf('Follower, for the followers that stream from it');
  assert.ok(from > 0, 'the table is in docs/operations.md');
  const names: string[] = [];
  for (const line of text.slice(from).split('\n')) {
    const m = /^\| `(lr_[a-z_]+)` \|/.exec(line);
    if (m) names.push(m[1]);
    else if (names.length > 0 && !line.startsWith('|')) break;
  }
  return names.sort();
}

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
    // Follower 3 has a history from its snapshot on (its log restarts there a moment after
    // the store reports the seq), and serves the stream too, though nobody streams from it.
    await waitFor(async () => ((await healthCheck(f3.readAddress, STREAM)) === 'SERVING' ? true : undefined), 'follower 3 to serve the replication stream', 30_000, 50);
  });

  it("metrics: the middle follower exports its downstream followers' stream metrics under the master's names", async () => {
    const put = await runTool('push-data', ['--stdin', '--master', master.address], { input: tsv(99, (i) => `k${i}`, (i) => `v${i}`) });
    assert.equal(put.code, 0, put.stderr);
    await waitFor(async () => {
      const s = await status(f1.readAddress);
      return s.followers.some((f) => f.followerId === 3 && f.connected && f.appliedSeq === '100') ? true : undefined;
    }, 'follower 3 to acknowledge seq 100 to follower 1', 60_000, 50);
    const fm = await scrapeMetrics(f1.metricsAddress!);
    const exported = [...metricNames(fm)].filter((n) => n.startsWith('lr_master_') && !/_(bucket|sum|count)$/.test(n)).sort();
    assert.deepEqual(exported, documentedDownstreamMetrics(), 'exports exactly what docs/operations.md lists for a follower');
    assert.equal(metric(fm, 'lr_master_followers_connected'), 1);
    assert.equal(metric(fm, 'lr_master_followers', { state: 'streaming' }), 1);
    assert.equal(metric(fm, 'lr_master_follower_applied_seq', { follower: '3' }), 100);
    assert.equal(metric(fm, 'lr_master_follower_sent_seq', { follower: '3' }), 100);
    assert.equal(metric(fm, 'lr_master_follower_lag_entries', { follower: '3' }), 0);
    assert.equal(metric(fm, 'lr_master_follower_lag_seconds', { follower: '3' }), 0);
    assert.equal(metric(fm, 'lr_master_follower_slot_lost', { follower: '3' }), 0);
    assert.ok(metric(fm, 'lr_master_follower_last_ack_timestamp_seconds', { follower: '3' })! > 0);
    // Follower 3 got a snapshot of seq 1 (the first accepted subscription), then entries 2..100 streamed.
    assert.equal(metric(fm, 'lr_master_snapshots_sent_total'), 1);
    assert.equal(metric(fm, 'lr_master_streamed_entries_total', { follower: '3' }), 99);
    assert.ok(metric(fm, 'lr_master_streamed_bytes_total', { follower: '3' })! > 99);
    assert.ok(metric(fm, 'lr_master_subscriptions_total', { result: 'accepted' })! >= 1);
    assert.ok(metric(fm, 'lr_master_subscriptions_total', { result: 'refused' })! >= 1, 'refused while it had no history');
    assert.ok(metric(fm, 'lr_master_errors_total', { code: 'FOLLOWER_UNAVAILABLE' })! >= 1);
    // The follower's own metrics are still there; the master's write and log metrics are not.
    assert.equal(metric(fm, 'lr_follower_applied_seq'), 100);
    assert.equal(metric(fm, 'lr_master_writes_total'), undefined);
    assert.equal(metric(fm, 'lr_master_last_seq'), undefined);
    // The master lists follower 1 only: follower 3 streams from follower 1.
    const mm = await scrapeMetrics(master.metricsAddress!);
    assert.equal(metric(mm, 'lr_master_followers_connected'), 1);
    assert.equal(metric(mm, 'lr_master_follower_applied_seq', { follower: '3' }), undefined);
  });

  it('slots: saved while the middle follower runs, so after its kill -9 it still lists its downstream follower at its position', async () => {
    // Follower 3 acknowledged seq 100 (the test before); follower 1 saves the slot within a second.
    const saved = (l: Record<string, unknown>) =>
      l.msg === "downstream followers' slots saved" && (l.slots as { followerId: number; appliedSeq: string }[]).some((x) => x.followerId === 3 && x.appliedSeq === '100');
    await waitFor(() => (f1.proc.logs.some(saved) ? true : undefined), 'follower 1 to save the slot of follower 3 at seq 100', 30_000, 50);
    // Follower 3 stays away, so only the saved slot can tell the restarted follower 1 about it.
    await f3.proc.kill('SIGKILL');
    await f1.proc.kill('SIGKILL');
    killed.push(f1, f3);
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--listen', f1.readAddress]);
    const s1 = await status(f1.readAddress);
    assert.deepEqual(s1.followers.map((f) => [f.followerId, f.appliedSeq, f.connected, f.seen]), [[3, '100', false, false]]);
    const fm = await scrapeMetrics(f1.metricsAddress!);
    assert.equal(metric(fm, 'lr_master_follower_applied_seq', { follower: '3' }), 100);
    assert.equal(metric(fm, 'lr_master_streamed_entries_total', { follower: '3' }), 0, 'its counters start at 0 from its slot');

    // Follower 3 comes back and continues from seq 101: no snapshot.
    f3 = await startFollower(3, path.join(root, 'follower-3'), master.address, ['--upstream', f1.readAddress]);
    const put = await runTool('push-data', ['after', 'restart', '--master', master.address]);
    assert.equal(put.code, 0, put.stderr);
    await waitFor(async () => ((await status(f3.readAddress)).self?.appliedSeq === '101' ? true : undefined), 'follower 3 to apply seq 101', 60_000, 50);
    assert.ok(!f3.proc.hasLog('master is sending a snapshot'), 'follower 3 resumed from its applied seq');
  });
});
