import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { digests, status, waitConverged } from '../helpers/cluster.js';
import { scrapeMetrics } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/**
 * The same cap end to end, through master-server's own flag: a stopped follower that is
 * only some 20,000 entries behind (the entries cap is its default, 10,000,000) but more
 * than --slot-max-lag-bytes of log behind loses its slot, is reported as README says
 * (error log line, SLOT-LOST in replication-status, slotLost in --json, the
 * lr_master_follower_slot_lost metric), and is resynchronised by snapshot when it returns.
 * The estimate counts table files only, so the load is several times LevelDB's memtable.
 */
describe('the bytes cap through master-server', () => {
  const root = tempDir();
  const CAP = 1_000_000;
  let master: MasterHandle | undefined;
  let follower: FollowerHandle | undefined;
  after(async () => {
    await follower?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('a follower further behind than --slot-max-lag-bytes loses its slot, is reported, and is snapshotted back', { timeout: 180_000 }, async (t) => {
    master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--retain-entries', '100', '--slot-max-lag-bytes', String(CAP), '--trim-interval-ms', '100']);
    const m = master;
    const push = (input: string) => runTool('push-data', ['--stdin', '--master', m.address], { input, timeoutMs: 120_000 });
    follower = await startFollower(1, path.join(root, 'follower-1'), m.address);
    assert.equal((await push('a\t1\nb\t2\nc\t3\n')).code, 0);
    await waitConverged(m.address, [1]);
    await follower.proc.kill('SIGTERM');
    follower = undefined;

    // About 10 MB of log (and as much data): incompressible values of 500 bytes.
    let load = '';
    for (let i = 0; i < 20_000; i++) load += `big-${i}\t${crypto.randomBytes(375).toString('base64')}\n`;
    const res = await push(load);
    assert.equal(res.code, 0, res.stderr);

    const lost = await waitFor(async () => {
      const s = await status(m.address);
      const f = s.followers.find((x) => x.followerId === 1);
      return f?.slotLost && BigInt(s.firstSeq) > BigInt(f.appliedSeq) + 1n ? { s, f } : undefined;
    }, 'slot 1 to be lost to the bytes cap and the log trimmed past it', 60_000);
    assert.equal(lost.f.appliedSeq, '3');
    const line = m.proc.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('follower 1 fell behind the retention cap; its slot is lost'));
    assert.ok(line, 'an error log line');
    assert.equal(line.level, 50);
    t.diagnostic(`slot lost at ${line.lagEntries} entries and ${line.lagBytes} bytes behind`);
    assert.ok(Number(line.lagBytes) > CAP, `lagBytes ${line.lagBytes} is over the cap of ${CAP}`);
    assert.ok(BigInt(String(line.lagEntries)) <= 20_000n, `only ${line.lagEntries} entries behind: not the entries cap (10,000,000)`);
    const text = await runTool('replication-status', ['--master', m.address]);
    assert.match(text.stdout, /^1\s+disconnected,SLOT-LOST/m);
    assert.match(text.stdout, /follower 1: fell behind the log retention cap/);
    const json = await runTool('replication-status', ['--master', m.address, '--json']);
    const parsed = JSON.parse(json.stdout) as { followers: { id: number; slotLost: boolean }[] };
    assert.equal(parsed.followers.find((f) => f.id === 1)?.slotLost, true, json.stdout);
    assert.equal((await scrapeMetrics(m.metricsAddress!)).get('lr_master_follower_slot_lost{follower="1"}'), 1);

    follower = await startFollower(1, path.join(root, 'follower-1'), m.address);
    const snap = await follower.proc.waitForLog('master is sending a snapshot');
    assert.match(String(snap.reason), /log trimmed/);
    await follower.proc.waitForLog('snapshot installed; streaming the log after it', 60_000);
    await waitConverged(m.address, [1]);
    assert.equal((await status(m.address)).followers.find((f) => f.followerId === 1)?.slotLost, false, 'the slot holds again');
    assert.equal((await scrapeMetrics(m.metricsAddress!)).get('lr_master_follower_slot_lost{follower="1"}'), 0);
    const rows = await digests(root, ['master', '1']);
    assert.equal(rows[0].digest, rows[1].digest);
    assert.equal(rows[0].seq, rows[1].seq);
  });
});
