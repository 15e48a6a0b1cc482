import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { dataKey, metaKey, MetaName } from '../../src/storage/layout.js';
import { openStore } from '../../src/storage/level-store.js';
import { u32, u64 } from '../../src/storage/layout.js';
import { digests, status, tsv, waitConverged } from '../helpers/cluster.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';
import { readStore } from '../helpers/stores.js';

/** A stopped follower's stored position (what it subscribes with), read straight from its store. */
async function storedPosition(dataDir: string): Promise<{ seq: bigint; checksum: number; historyId: Buffer; gen: number }> {
  const db = await openStore(dataDir, { create: false });
  try {
    const [seq, checksum, historyId, gen] = await db.getMany([
      metaKey(MetaName.APPLIED_SEQ),
      metaKey(MetaName.APPLIED_CHECKSUM),
      metaKey(MetaName.HISTORY_ID),
      metaKey(MetaName.DATA_GEN),
    ]);
    return { seq: seq!.readBigUInt64BE(), checksum: checksum!.readUInt32BE(), historyId: historyId!, gen: gen?.readUInt32BE() ?? 0 };
  } finally {
    await db.close();
  }
}

/** Writes raw records into a stopped follower's store, as another process writing to it would. */
async function writeOffline(dataDir: string, records: [Buffer, Buffer][]): Promise<void> {
  const db = await openStore(dataDir, { create: false });
  try {
    for (const [k, v] of records) await db.put(k, v);
  } finally {
    await db.close();
  }
}

/**
 * Continuity proof at the follower's own position (contract 7): a follower on the master's
 * history whose chained checksum at its applied seq is not the master's is resynchronised
 * by snapshot, with the reason and both positions logged on both sides; a follower ahead
 * of the master on the master's history is refused with FOLLOWER_AHEAD and left exactly as
 * it is, never rolled back or forward.
 */
describe('divergence at the same seq, and a follower ahead of the master', () => {
  const root = tempDir();
  const masterDir = path.join(root, 'master');
  const dirOf = (id: number) => path.join(root, `follower-${id}`);
  let master: MasterHandle;
  const followers = new Map<number, FollowerHandle>();
  const push = (input: string) => runTool('push-data', ['--stdin', '--master', master.address], { input });
  after(async () => {
    for (const f of followers.values()) await f.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('a follower whose history went another way at the same seq gets a snapshot; its own data is gone', { timeout: 120_000 }, async () => {
    master = await startMaster(masterDir, '127.0.0.1:0', ['--no-sync']);
    followers.set(1, await startFollower(1, dirOf(1), master.address));
    assert.equal((await push(tsv(20, (i) => `a-${i}`, (i) => `v${i}`))).code, 0);
    await waitConverged(master.address, [1]);
    await followers.get(1)!.proc.kill('SIGTERM');
    followers.delete(1);

    // Offline: the same history and seq, but another checksum there, and data the master never wrote.
    const pos = await storedPosition(dirOf(1));
    assert.equal(pos.seq, 20n);
    const masterChecksum = pos.checksum; // it had applied the master's entries: the master's checksum at seq 20
    const forged = (masterChecksum ^ 0x5a5a5a5a) >>> 0;
    await writeOffline(dirOf(1), [
      [metaKey(MetaName.APPLIED_CHECKSUM), u32(forged)],
      [dataKey(pos.gen, Buffer.from('bogus')), Buffer.from('not the master\'s')],
    ]);
    // The master goes on: the follower's seq 20 is inside its log, entry 21 does not chain from the forged checksum.
    assert.equal((await push(tsv(10, (i) => `b-${i}`, (i) => `v${i}`))).code, 0);
    const s = await status(master.address);
    assert.equal(s.lastSeq, '30');
    assert.equal(s.historyId.toString('hex'), pos.historyId.toString('hex'), 'the follower is on the master\'s history');

    const masterLogFrom = master.proc.logs.length;
    const f1 = await startFollower(1, dirOf(1), master.address);
    followers.set(1, f1);
    const hist = pos.historyId.toString('hex');
    // Both positions: the follower's seq and checksum, the master's checksum at that seq and its last seq.
    const both = new RegExp(
      `^diverged: follower history ${hist} at seq 20 has checksum ${forged.toString(16)}, ` +
        `the master's checksum at seq 20 is ${masterChecksum.toString(16)}; master history ${hist} epoch 1 at seq 30 \\(log 1\\.\\.30\\)$`,
    );
    const followerLine = await f1.proc.waitForLog('master is sending a snapshot');
    assert.match(String(followerLine.reason), both, 'the follower logs the reason with both positions');
    assert.equal(followerLine.appliedSeq, '20');
    const masterLine = await master.proc.waitForLog('sending a snapshot', 20_000, masterLogFrom);
    assert.match(String(masterLine.reason), both, 'the master logs the reason with both positions');
    assert.equal(masterLine.followerId, 1);
    assert.equal(masterLine.snapshotSeq, '30');

    await waitConverged(master.address, [1]);
    const got = await runTool('get-data', ['1', 'bogus', '--data-root', root]);
    assert.notEqual(got.code, 0, 'the key the master never wrote is gone');
    const [m, f] = await digests(root, ['master', '1']);
    assert.equal(f.digest, m.digest);
    assert.equal(f.seq, m.seq);
    assert.equal(f.keys, '30');
    // And on disk, once stopped: the master's checksum at its seq again, no trace of the forged data.
    await f1.proc.kill('SIGTERM');
    followers.delete(1);
    const after = await storedPosition(dirOf(1));
    assert.equal(after.seq, 30n);
    assert.notEqual(after.gen, pos.gen, 'the snapshot is a new data generation');
    const data = (await readStore(dirOf(1))).data;
    assert.equal(data.has('bogus'), false);
    assert.equal(data.size, 30);
  });

  it('a follower ahead of the master on its history is refused with FOLLOWER_AHEAD and never repositioned', { timeout: 120_000 }, async () => {
    followers.set(2, await startFollower(2, dirOf(2), master.address));
    await waitConverged(master.address, [2]);
    await followers.get(2)!.proc.kill('SIGTERM');
    followers.delete(2);
    const lastSeq = BigInt((await status(master.address)).lastSeq);
    // Offline: the follower claims seqs the master never committed, on the master's history.
    const ahead = lastSeq + 100n;
    await writeOffline(dirOf(2), [[metaKey(MetaName.APPLIED_SEQ), u64(ahead)]]);
    const before = await readStore(dirOf(2));
    const slotBefore = (await status(master.address)).followers.find((x) => x.followerId === 2)!;

    const masterLogFrom = master.proc.logs.length;
    const f2 = await startFollower(2, dirOf(2), master.address);
    followers.set(2, f2);
    const message = `follower has applied up to seq ${ahead} but the master's last seq is ${lastSeq} on the same history; refusing to roll it back or forward`;
    const refusal = await f2.proc.waitForLog(message);
    assert.equal(refusal.code, 'FOLLOWER_AHEAD');
    assert.equal(refusal.appliedSeq, String(ahead));
    // It retries with backoff and is refused every time; the master logs each refusal once.
    const refusals = () => master.proc.logs.slice(masterLogFrom).filter((l) => l.msg === 'request refused' && l.code === 'FOLLOWER_AHEAD' && l.followerId === 2);
    await waitFor(() => refusals().length >= 3, 'three refused subscriptions of follower 2');
    const logged = f2.proc.logs.filter((l) => l.msg === message);
    assert.equal(logged.filter((l) => (l.level as number) >= 40).length, 1, 'the follower logs the refusal once (as an error), the retries only at debug');
    assert.equal(refusal.level, 50);
    assert.equal(f2.proc.hasLog('master is sending a snapshot'), false, 'not rolled back by a snapshot');
    assert.equal(master.proc.logs.slice(masterLogFrom).some((l) => l.msg === 'sending a snapshot' || l.msg === 'follower subscribed'), false);
    // The master's view of follower 2: its slot as it was, and why it is refused.
    const now = (await status(master.address)).followers.find((x) => x.followerId === 2)!;
    assert.equal(now.connected, false);
    assert.equal(now.appliedSeq, slotBefore.appliedSeq, 'the slot position is unchanged');
    assert.equal(now.sentSeq, slotBefore.sentSeq);
    assert.match(now.lastError, /^FOLLOWER_AHEAD: follower has applied up to seq/);

    // Untouched on disk: same position, same data.
    await f2.proc.kill('SIGTERM');
    followers.delete(2);
    const after = await readStore(dirOf(2));
    assert.equal(after.appliedSeq, ahead, 'never rolled back');
    assert.equal(after.gen, before.gen);
    assert.deepEqual(after.data, before.data, 'nothing applied, nothing removed');
  });
});
