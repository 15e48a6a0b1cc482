import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openMasterStore } from '../../src/storage/level-master-store.js';
import { digests, status, tsv, waitConverged } from '../helpers/cluster.js';
import { findInSegments, flipBits } from '../helpers/stores.js';
import { runTool, ServerProcess, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

describe('log continuity: slots and corrupt entries', () => {
  const root = tempDir();
  const masterDir = path.join(root, 'master');
  let master: MasterHandle | undefined;
  let f1: FollowerHandle | undefined;
  const push = (args: string[], input?: string) => runTool('push-data', [...args, '--master', master!.address], { input });
  after(async () => {
    await f1?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('the log waits for a stopped follower within the cap; it resumes from the log, not a snapshot', { timeout: 60_000 }, async () => {
    master = await startMaster(masterDir, '127.0.0.1:0', ['--retain-entries', '10', '--trim-interval-ms', '100']);
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    assert.equal((await push(['--stdin'], tsv(50, (i) => `a-${i}`, (i) => `v${i}`))).code, 0);
    await waitConverged(master.address, [1]);
    await f1.proc.kill('SIGTERM');
    assert.equal((await push(['--stdin'], tsv(200, (i) => `b-${i}`, (i) => `v${i}`))).code, 0);
    // The trimmer runs (the newest-10 rule alone would trim to 241) but the slot holds the
    // log at follower 1's position; trimming is monotonic, so overshooting would never match.
    await waitFor(async () => (await status(master!.address)).firstSeq === '51', 'the log trimmed exactly up to what follower 1 still needs');
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    const line = await f1.proc.waitForLog(/^connected to master/);
    assert.equal(line.fromSeq, '51');
    assert.equal(f1.proc.hasLog('master is sending a snapshot'), false);
    await waitConverged(master.address, [1]);
    // With follower 1 caught up, the log shrinks to the newest 10 entries.
    await waitFor(async () => {
      const s = await status(master!.address);
      return s.firstSeq === String(Number(s.lastSeq) - 9);
    }, 'the log to keep only the newest 10 entries');
  });

  it('a corrupt log entry stops the master at start-up, naming it; --repair-log starts a new history', { timeout: 90_000 }, async () => {
    const before = await status(master!.address);
    const seq = BigInt(before.lastSeq) - 3n;
    await f1!.proc.kill('SIGTERM');
    await master!.proc.kill('SIGTERM');
    const address = master!.address;
    master = undefined;
    // Entry seq's bytes, as the log holds them, and the one place they are stored: a record
    // of the newest segment, with good records (seq + 1 .. lastSeq) chained after it, so
    // this is damage inside the log, not the torn end of an unfinished append.
    const store = await openMasterStore(masterDir, { create: false });
    const entry = await store.log.entryAt(seq);
    await store.close();
    assert.ok(entry);
    const hits = findInSegments(masterDir, entry);
    assert.equal(hits.length, 1, `entry ${seq} is stored once (found at ${JSON.stringify(hits)})`);
    flipBits(hits[0].file, hits[0].at + entry.length - 6, 0x40); // one flipped bit inside the value

    const refused = new ServerProcess('master-server', ['--data-dir', masterDir, '--listen', address]);
    const { code } = await refused.exit;
    assert.equal(code, 4);
    assert.match(refused.stderr, new RegExp(`log entry ${seq} is corrupt .*intact up to seq ${seq - 1n}.*\\[CORRUPT_ENTRY\\]`));
    assert.equal(refused.stderr.trim().split('\n').length, 1);

    master = await startMaster(masterDir, address, ['--repair-log', '--retain-entries', '10', '--trim-interval-ms', '100']);
    assert.ok(master.proc.hasLog('log repaired: dropped the log from the corrupt entry and started a new history'));
    // The store (its data written past the cut) is ahead of the cut log: the log restarts at
    // the store's seq under a new history, so the master's position does not move back.
    assert.ok(master.proc.hasLog("log repaired: restarted the log at the store's seq under a new history"));
    const repaired = await status(master.address);
    assert.equal(repaired.lastSeq, before.lastSeq);
    assert.equal(repaired.firstSeq, String(BigInt(before.lastSeq) + 1n), 'the new log holds none of the old entries');
    assert.notEqual(repaired.historyId.toString('hex'), before.historyId.toString('hex'));
    // The follower applied the dropped entries under the old history: it is resynchronised.
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    const snap = await f1.proc.waitForLog('master is sending a snapshot');
    assert.match(String(snap.reason), /history mismatch/);
    assert.equal((await push(['after', 'repair'])).code, 0);
    await waitConverged(master.address, [1]);
    const rows = await digests(root, ['master', '1']);
    assert.equal(rows[0].digest, rows[1].digest);
    assert.equal(rows[0].keys, '251', 'every write is still in the data, dropped log entries included');
  });
});
