import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { entrySeq } from '../../src/wire/entry-codec.js';
import { LOG_PREFIX_END, logKey } from '../../src/storage/layout.js';
import { openStore } from '../../src/storage/level-store.js';
import { splitChunk } from '../../src/storage/log-chunk.js';
import { digests, status, tsv, waitConverged } from '../helpers/cluster.js';
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
    const db = await openStore(masterDir, { create: false });
    // The log chunk holding seq (stored under its last seq), and the entry in it.
    const [[chunkKey, chunk]] = await db.iterator({ gte: logKey(seq), lt: LOG_PREFIX_END, limit: 1 }).all();
    const entry = splitChunk(chunk).find((e) => entrySeq(e) === seq)!; // a view into chunk
    entry[entry.length - 6] ^= 0x40; // one flipped bit inside the value
    await db.put(chunkKey, chunk);
    await db.close();

    const refused = new ServerProcess('master-server', ['--data-dir', masterDir, '--listen', address]);
    const { code } = await refused.exit;
    assert.equal(code, 4);
    assert.match(refused.stderr, new RegExp(`log entry ${seq} is corrupt .*intact up to seq ${seq - 1n}.*\\[CORRUPT_ENTRY\\]`));
    assert.equal(refused.stderr.trim().split('\n').length, 1);

    master = await startMaster(masterDir, address, ['--repair-log', '--retain-entries', '10', '--trim-interval-ms', '100']);
    assert.ok(master.proc.hasLog('log repaired: dropped the log from the corrupt entry and started a new history'));
    const repaired = await status(master.address);
    assert.equal(repaired.lastSeq, String(seq - 1n));
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
