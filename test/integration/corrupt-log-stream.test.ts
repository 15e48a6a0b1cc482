import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openMasterStore } from '../../src/storage/level-master-store.js';
import { readVia, status, tsv, waitConverged } from '../helpers/cluster.js';
import { metric, scrapeMetrics } from '../helpers/probes.js';
import { findInSegments, flipBits } from '../helpers/stores.js';
import { runTool, ServerProcess, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/**
 * The master's check of entries it reads back from its log while streaming
 * (subscription.ts: "does not chain from the entry before it; refusing to serve past it"),
 * with real processes.
 *
 * Start-up verification (segment-recovery.ts) reads the whole log and refuses to start
 * with a corrupt entry, so a corrupt entry can only reach the streaming path if the log is
 * damaged *after* start-up: bit rot, a bad disk or controller, another program writing
 * the files. This test does exactly that: with the master running (restarted, so its
 * in-memory tail, which is not re-checked, is empty), it flips one bit of a log entry in
 * its segment file on disk, behind the master's back. The master reads entries past its
 * tail from the segment files with plain reads, so its next read of that entry sees the
 * flipped bit, as it would see real on-disk damage.
 *
 * What it cannot show: damage to an entry still in the in-memory tail (sealed by this
 * process, not re-checked by design), or to a block of the segment the master read before
 * the damage and still holds (segment-reader.ts keeps the block read last).
 */
describe('a log entry corrupted on disk while the master runs', () => {
  const root = tempDir();
  const masterDir = path.join(root, 'master');
  let master: MasterHandle | undefined;
  let f1: FollowerHandle | undefined;
  let f2: FollowerHandle | undefined;
  after(async () => {
    await f1?.proc.kill('SIGKILL');
    await f2?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  });
  const push = async (lines: string) => {
    const res = await runTool('push-data', ['--stdin', '--master', master!.address], { input: lines });
    assert.equal(res.code, 0, res.stderr);
  };
  const batch = (prefix: string) => tsv(20, (i) => `${prefix}-${i}`, () => crypto.randomBytes(150).toString('base64url'));

  it('streaming stops at the bad entry with CORRUPT_ENTRY, for a follower behind it and one just before it; start-up then refuses the log', { timeout: 120_000 }, async () => {
    master = await startMaster(masterDir);
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    f2 = await startFollower(2, path.join(root, 'follower-2'), master.address);
    await push(batch('a')); // seqs 1..20
    await waitConverged(master.address, [1, 2]);
    await f1.proc.kill('SIGTERM'); // follower 1 stays at seq 20
    f1 = undefined;
    await push(batch('b')); // seqs 21..40
    await waitConverged(master.address, [2]);
    await f2.proc.kill('SIGTERM'); // follower 2 stays at seq 40
    f2 = undefined;
    await push(batch('c')); // seqs 41..60
    const address = master.address;
    assert.equal((await status(address)).lastSeq, '60');
    await master.proc.kill('SIGTERM');

    // Entry 30 is in the middle of what follower 1 still needs (21..60); entry 41 is the
    // very next one follower 2 needs. Their bytes, as the log holds them (read with the
    // master stopped).
    const store = await openMasterStore(masterDir, { create: false });
    const bad = [30n, 41n];
    const entries = await Promise.all(bad.map(async (seq) => (await store.log.entryAt(seq))!));
    await store.close();
    assert.ok(entries.every(Boolean));

    // Restarted: start-up verification passes and the tail is empty, so every entry a
    // follower needs is read back from the segment files. Nothing may read them before the
    // damage: the segment reader keeps the block it read last in memory, and a Status call
    // would read entry 21 (follower 1's lag) and with it the block holding 21..60. So the
    // master's position is taken from its start-up log line, not from Status.
    master = await startMaster(masterDir, address);
    assert.equal((await master.proc.waitForLog('master store opened')).lastSeq, '60');

    // Now the damage: one flipped bit inside each entry's value, in its segment file, with
    // good records chained after it (entries up to 60 follow both).
    for (const entry of entries) {
      const hits = findInSegments(masterDir, entry);
      assert.equal(hits.length, 1, `the entry's bytes are stored once in the log (found at ${JSON.stringify(hits)})`);
      flipBits(hits[0].file, hits[0].at + entry.length - 4 - 50, 0x01); // 50 bytes before the checksum: inside the value
    }
    assert.equal((await status(address)).lastSeq, '60');

    // Follower 1 (at 20) subscribes from 21: the stream is accepted (entry 21 is intact)
    // and the master refuses to send the read-back run that holds entry 30, naming it.
    f1 = await startFollower(1, path.join(root, 'follower-1'), address);
    const refusal = await f1.proc.waitForLog(/refusing to serve past it/);
    assert.equal(refusal.code, 'CORRUPT_ENTRY');
    assert.match(refusal.msg!, /^log entry 30 does not chain from the entry before it; refusing to serve past it$/);
    // It retries with backoff and is refused again each time: the refusal is not a one-off.
    await waitFor(async () => (metric(await scrapeMetrics(master!.metricsAddress!), 'lr_master_errors_total', { code: 'CORRUPT_ENTRY' }) ?? 0) >= 2, 'a second refusal');
    // Nothing from the run holding the bad entry reached it, let alone anything past it.
    const s1 = (await status(address)).followers.find((f) => f.followerId === 1)!;
    assert.equal(s1.appliedSeq, '20');
    assert.equal((await readVia(f1.readAddress, 'a-19')).value !== undefined, true);
    assert.equal((await readVia(f1.readAddress, 'b-0')).value, undefined);
    assert.equal((await readVia(f1.readAddress, 'c-19')).value, undefined);
    // The follower's own check never saw the entry: the master refused first.
    assert.equal(f1.proc.logs.some((l) => /does not chain from the checksum of seq/.test(l.msg ?? '')), false);

    // Follower 2 (at 40) subscribes from 41, the bad entry itself: refused the same way,
    // not mistaken for a follower that diverged (which would get a snapshot past it).
    f2 = await startFollower(2, path.join(root, 'follower-2'), address);
    const refusal2 = await f2.proc.waitForLog(/refusing to serve past it/);
    assert.equal(refusal2.code, 'CORRUPT_ENTRY');
    assert.match(refusal2.msg!, /^log entry 41 does not chain from the entry before it; refusing to serve past it$/);
    assert.equal(f2.proc.hasLog('master is sending a snapshot'), false);
    assert.equal((await status(address)).followers.find((f) => f.followerId === 2)!.appliedSeq, '40');
    assert.equal((await readVia(f2.readAddress, 'c-0')).value, undefined);

    // The master keeps serving everything else: writes commit after the bad entry.
    await push(tsv(1, () => 'after', () => 'damage'));
    assert.equal((await status(address)).lastSeq, '61');

    // The same damage found at start-up: the master refuses to start, naming entry 30.
    await f1.proc.kill('SIGTERM');
    await f2.proc.kill('SIGTERM');
    f1 = f2 = undefined;
    assert.equal((await master.proc.kill('SIGTERM')).code, 0);
    master = undefined;
    const refused = new ServerProcess('master-server', ['--data-dir', masterDir, '--listen', address]);
    assert.equal((await refused.exit).code, 4);
    assert.match(refused.stderr, /log entry 30 is corrupt .*intact up to seq 29.*\[CORRUPT_ENTRY\]/);
  });
});
