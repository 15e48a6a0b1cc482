import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { toolScript } from '../../src/tools/harness/node-process.js';
import { status, tsv, waitConverged } from '../helpers/cluster.js';
import { metric, scrapeMetrics } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/**
 * What an operator sees in replication-status: the sent seq beside the applied one (a
 * paused follower is sent entries it does not apply), a follower's own view, --watch.
 */
describe('replication-status: sent seq, a follower\'s own view, --watch', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  let f2: FollowerHandle;
  const push = (input: string) => runTool('push-data', ['--stdin', '--batch-size', '1', '--master', master.address], { input });

  before(async () => {
    master = await startMaster(path.join(root, 'master'));
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    f2 = await startFollower(2, path.join(root, 'follower-2'), master.address);
    assert.equal((await push(tsv(6, (i) => `a-${i}`, (i) => `v${i}`))).code, 0);
    await waitConverged(master.address, [1, 2]);
  });
  after(async () => {
    for (const h of [f1, f2, master]) await h?.proc.kill('SIGKILL');
  });

  it('a SIGSTOPped follower shows APPLIED 6 and SENT 36 once 30 more entries were sent to it', { timeout: 60_000 }, async () => {
    f2.proc.pause();
    try {
      assert.equal((await push(tsv(30, (i) => `b-${i}`, (i) => `v${i}`))).code, 0);
      await waitFor(async () => (await status(master.address)).followers.find((f) => f.followerId === 2)?.sentSeq === '36', 'the master to send follower 2 everything');
      const text = (await runTool('replication-status', ['--master', master.address])).stdout;
      assert.match(text, /^FOLLOWER\s+STATE\s+APPLIED\s+SENT\s+LAG\s/m);
      assert.match(text, /^2\s+streaming\s+6\s+36\s+30\s/m, text);
      assert.match(text, /^1\s+streaming\s+36\s+36\s+0\s/m, text);
      const json = JSON.parse((await runTool('replication-status', ['--master', master.address, '--json'])).stdout);
      const two = json.followers.find((f: { id: number }) => f.id === 2);
      assert.deepEqual([two.appliedSeq, two.sentSeq, two.lagEntries, two.connected, two.seen], ['6', '36', '30', true, true]);
      assert.ok(two.sinceMs > 0 && two.sinceMs <= json.master.timeMs, 'connected since, master clock');
      const m = await scrapeMetrics(master.metricsAddress!);
      assert.equal(metric(m, 'lr_master_follower_sent_seq', { follower: '2' }), 36);
      assert.equal(metric(m, 'lr_master_follower_applied_seq', { follower: '2' }), 6);
    } finally {
      f2.proc.resume();
    }
    await waitConverged(master.address, [1, 2]);
  });

  it("pointed at a follower, it prints the follower's own view", async () => {
    const lastSeq = (await status(master.address)).lastSeq;
    const text = await runTool('replication-status', ['--master', f1.readAddress]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^follower 1 ${f1.readAddress}  state streaming since \\S+ ago  master ${master.address}$`, 'm'));
    assert.match(text.stdout, new RegExp(`^applied ${lastSeq}  master lastSeq ${lastSeq} \\(as last heard\\)  lag 0 entries, 0\\.0s  sync yes  history [0-9a-f]{32}  checksum [0-9a-f]{8}$`, 'm'));
    const json = JSON.parse((await runTool('replication-status', ['--master', f1.readAddress, '--json'])).stdout);
    assert.equal(json.role, 'follower');
    assert.deepEqual([json.follower.id, json.follower.state, json.follower.appliedSeq, json.follower.masterAddress], [1, 'streaming', lastSeq, master.address]);
    assert.equal(json.follower.historyId, (await status(master.address)).historyId.toString('hex'));
    // Still read-only: writes are refused, naming the master.
    const write = await runTool('push-data', ['k', 'v', '--no-redirect', '--master', f1.readAddress]);
    assert.equal(write.code, 5);
    assert.match(write.stderr, /\[NOT_MASTER\]/);
    const drop = await runTool('replication-admin', ['drop-slot', '2', '--master', f1.readAddress]);
    assert.equal(drop.code, 5);
    assert.match(drop.stderr, new RegExp(`the master is at ${master.address} \\[NOT_MASTER\\]`));
  });

  it('--watch refreshes until interrupted, then exits 0', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, [toolScript('replication-status'), '--master', master.address, '--watch', '0.2', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor(async () => out.split('\n').length > 3, 'three refreshes');
      assert.equal((await push('w\t1\n')).code, 0);
      await waitFor(async () => out.split('\n').some((l) => l !== '' && JSON.parse(l).master.lastSeq === '37'), 'a refresh showing the new write');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, err);
    const reports = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(reports.length >= 4 && reports.every((r) => r.role === 'master' && r.followers.length === 2));
    assert.equal(err, '');
    const bad = await runTool('replication-status', ['--master', master.address, '--watch', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--watch must be a number of seconds/);
  });
});
