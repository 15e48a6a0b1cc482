import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { digests, readVia, status, tsv, waitConverged } from '../helpers/cluster.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';
import { scrapeMetrics } from '../helpers/probes.js';
import { diffStores, readStore } from '../helpers/stores.js';

const RETENTION = ['--retain-entries', '50', '--slot-max-lag-entries', '500', '--trim-interval-ms', '100'];

describe('log retention and snapshot bootstrap', () => {
  const root = tempDir();
  const dir = (name: string) => path.join(root, name);
  let master: MasterHandle;
  const followers = new Map<number, FollowerHandle>();
  const push = (args: string[], input?: string) => runTool('push-data', [...args, '--master', master.address], { input, timeoutMs: 120_000 });
  const start = async (id: number) => {
    const f = await startFollower(id, dir(`follower-${id}`), master.address);
    followers.set(id, f);
    return f;
  };
  const stop = async (id: number, sig: NodeJS.Signals = 'SIGTERM') => {
    await followers.get(id)?.proc.kill(sig);
    followers.delete(id);
  };
  after(async () => {
    for (const f of followers.values()) await f.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('a follower behind the trimmed log is reported, then snapshotted and streams again', { timeout: 120_000 }, async () => {
    master = await startMaster(dir('master'), '127.0.0.1:0', RETENTION);
    await start(1);
    assert.equal((await push(['--stdin'], tsv(100, (i) => `early-${i}`, (i) => `e${i}`))).code, 0);
    await waitConverged(master.address, [1]);
    await stop(1);

    assert.equal((await push(['--stdin'], tsv(2_000, (i) => `late-${i}`, (i) => `l${i}`))).code, 0);
    // Past the cap: the slot is lost, reported in status, and the log is trimmed past it.
    const lost = await waitFor(async () => {
      const s = await status(master.address);
      const f = s.followers.find((x) => x.followerId === 1);
      return f?.slotLost && BigInt(s.firstSeq) > BigInt(f.appliedSeq) + 1n ? s : undefined;
    }, 'slot 1 to be lost and the log trimmed past it');
    assert.ok(BigInt(lost.firstSeq) > 101n);
    assert.ok(master.proc.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('fell behind the retention cap')));
    const metrics = await scrapeMetrics(master.metricsAddress!);
    assert.equal(metrics.get('lr_master_follower_slot_lost{follower="1"}'), 1, 'the lost slot is a metric too');
    const text = await runTool('replication-status', ['--master', master.address]);
    assert.match(text.stdout, /^1\s+disconnected,SLOT-LOST/m);

    const f1 = await start(1);
    const snap = await f1.proc.waitForLog('master is sending a snapshot');
    assert.match(String(snap.reason), /log trimmed/);
    await f1.proc.waitForLog('snapshot installed; streaming the log after it', 60_000);
    assert.equal((await push(['after', 'snapshot'])).code, 0);
    await waitConverged(master.address, [1]);
    const s = await status(master.address);
    assert.equal(s.followers.find((x) => x.followerId === 1)?.slotLost, false, 'the slot holds again');
    assert.equal((await scrapeMetrics(master.metricsAddress!)).get('lr_master_follower_slot_lost{follower="1"}'), 0);
    const rows = await digests(root, ['master', '1']);
    assert.equal(rows[0].digest, rows[1].digest);
    assert.equal(rows[0].seq, rows[1].seq);
  });

  it('a brand-new follower joins a master with 100,000 keys by snapshot, then goes live', { timeout: 240_000 }, async () => {
    const load = await push(['--stdin', '--concurrency', '2'], tsv(100_000, (i) => `bulk-${String(i).padStart(6, '0')}`, (i) => `value-${i}-${'x'.repeat(40)}`));
    assert.equal(load.code, 0, load.stderr);
    const f2 = await startFollower(2, dir('follower-2'), master.address, ['--progress-interval-ms', '100']);
    followers.set(2, f2);
    const snap = await f2.proc.waitForLog('master is sending a snapshot');
    assert.match(String(snap.reason), /new follower/);
    await f2.proc.waitForLog('snapshot installed; streaming the log after it', 180_000);
    const progress = f2.proc.logs.filter((l) => l.msg === 'progress' && l.phase === 'snapshot');
    assert.ok(progress.length > 0, 'periodic progress lines while the snapshot streams');
    assert.ok(progress.every((l) => typeof l.keys === 'string' && typeof l.keysPerSecond === 'number'));
    assert.equal((await push(['live', 'write'])).code, 0);
    await waitFor(async () => (await readVia(f2.readAddress, 'live')).value === 'write', 'live write on follower 2');
    await waitConverged(master.address, [1, 2], 120_000);
    const rows = await digests(root, ['master', '1', '2']);
    assert.ok(rows.every((r) => r.digest === rows[0].digest && r.seq === rows[0].seq), JSON.stringify(rows));
    assert.ok(Number(rows[0].keys) > 100_000);
  });

  it('SIGKILL mid-snapshot: reads keep the old data, the restart completes and converges', { timeout: 240_000 }, async () => {
    await waitConverged(master.address, [1, 2], 120_000);
    const before = await readVia(followers.get(2)!.readAddress, 'probe');
    assert.equal(before.value, undefined);
    assert.equal((await push(['probe', 'old'])).code, 0);
    await waitFor(async () => (await readVia(followers.get(2)!.readAddress, 'probe')).value === 'old', 'probe=old on follower 2');
    await stop(2);
    const oldSeq = (await readStore(dir('follower-2'))).appliedSeq!;
    // Overwrite the probe and write far past the retention cap: follower 2 needs a snapshot.
    assert.equal((await push(['probe', 'new'])).code, 0);
    assert.equal((await push(['--stdin'], tsv(1_000, (i) => `more-${i}`, (i) => `m${i}`))).code, 0);
    await waitFor(async () => (await status(master.address)).followers.find((f) => f.followerId === 2)?.slotLost, 'slot 2 lost');

    let f2 = await start(2);
    await f2.proc.waitForLog('master is sending a snapshot');
    await f2.proc.kill('SIGKILL');
    followers.delete(2);
    const killed = await readStore(dir('follower-2'));
    assert.equal(killed.appliedSeq, oldSeq, 'the kill landed mid-snapshot: the position is still the old one');
    assert.equal(killed.data.get('probe'), 'old', 'a follower killed mid-snapshot holds its old data, whole');

    // Restart: while the snapshot streams, every read is the old state or the new one, never a mix.
    f2 = await start(2);
    const reads: { value: string | undefined; seq: bigint }[] = [];
    const installed = f2.proc.waitForLog('snapshot installed; streaming the log after it', 180_000);
    let done = false;
    void installed.then(() => (done = true), () => (done = true));
    while (!done) reads.push(await readVia(f2.readAddress, 'probe').catch(() => ({ value: 'unreachable', seq: -1n })));
    await installed;
    const served = reads.filter((r) => r.value !== 'unreachable');
    assert.ok(served.length > 0, 'reads were served during the snapshot');
    for (const r of served) {
      const ok = (r.value === 'old' && r.seq === oldSeq) || (r.value === 'new' && r.seq > oldSeq);
      assert.ok(ok, `read during snapshot returned ${r.value} at seq ${r.seq}`);
    }
    await waitConverged(master.address, [1, 2], 120_000);
    assert.equal((await readVia(f2.readAddress, 'probe')).value, 'new');
    const rows = await digests(root, ['master', '2']);
    assert.equal(rows[0].digest, rows[1].digest);
    await stop(2);
    const after = await readStore(dir('follower-2'));
    assert.equal(after.otherGenKeys, 0, 'no leftovers of the interrupted or replaced generations');
    await start(2);
  });

  it('a wiped master is a new history: followers resynchronise and keep nothing of the old one', { timeout: 240_000 }, async () => {
    await waitConverged(master.address, [1, 2], 120_000);
    const address = master.address;
    const marks = new Map([...followers].map(([id, f]) => [id, f.proc.logs.length]));
    await master.proc.kill('SIGKILL');
    await runTool('store-digest', ['1', '--data-root', root]); // followers still serve reads meanwhile
    const { rmSync } = await import('node:fs');
    rmSync(dir('master'), { recursive: true, force: true });
    master = await startMaster(dir('master'), address, RETENTION);
    assert.equal((await push(['fresh', 'start'])).code, 0);
    for (const id of [1, 2]) {
      const line = await followers.get(id)!.proc.waitForLog('master is sending a snapshot', 60_000, marks.get(id));
      assert.match(String(line.reason), /history mismatch/);
    }
    await waitConverged(master.address, [1, 2], 120_000);
    const rows = await digests(root, ['master', '1', '2']);
    assert.ok(rows.every((r) => r.digest === rows[0].digest && r.keys === '1'), JSON.stringify(rows));
    for (const id of [1, 2]) assert.equal((await readVia(followers.get(id)!.readAddress, 'probe')).value, undefined);
    await stop(1);
    const f1 = await readStore(dir('follower-1'));
    assert.deepEqual([...f1.data.keys()], ['fresh']);
    assert.equal(diffStores(f1.data, new Map([['fresh', 'start']])), '');
    await start(1);
  });
});
