import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { status, tsv } from '../helpers/cluster.js';
import {
  runTool,
  ServerProcess,
  startFollower,
  startMaster,
  tempDir,
  TEST_FOLLOWER_ARGS,
  waitFor,
  type FollowerHandle,
  type MasterHandle,
} from '../helpers/processes.js';
import { callUnary, storeClient } from '../../src/wire/rpc-client.js';
import type { DigestResponse__Output } from '../../src/wire/generated/levelreplicator/v1/DigestResponse.js';

async function digestOf(address: string): Promise<DigestResponse__Output> {
  const client = storeClient(address);
  try {
    return await callUnary<DigestResponse__Output>((o, cb) => client.Digest({}, o, cb), 10_000, { role: 'follower', address });
  } finally {
    client.close();
  }
}

/** The applied seq a follower reports about itself (Status.self). */
async function appliedSeqOf(address: string): Promise<bigint> {
  const s = await status(address);
  return BigInt(s.self?.appliedSeq ?? '0');
}

/** A follower restarted on its data directory at a fixed address (a restart after kill -9). */
async function restartFollower(id: number, dataDir: string, master: string, listen: string, extra: string[] = []): Promise<ServerProcess> {
  const proc = new ServerProcess('follower-client', [String(id), '--data-dir', dataDir, '--master', master, '--listen', listen, ...TEST_FOLLOWER_ARGS, ...extra]);
  try {
    await proc.waitForLog('follower serving reads');
  } catch (err) {
    await proc.kill('SIGKILL');
    throw err;
  }
  return proc;
}

/**
 * master -> follower 1 -> follower 3 -> follower 4 (--upstream). Follower 1 is killed
 * (kill -9) while writes stream through the chain and restarted on its data directory and
 * address: follower 3 re-attaches to it from its applied seq (no snapshot, no gap), and
 * every node ends with the same digest. Follower 1 restarted with --upstream at follower 3
 * (which streams from it) is refused with FOLLOW_LOOP and applies nothing.
 */
describe('chained followers', () => {
  const root = tempDir();
  const procs: ServerProcess[] = [];
  after(async () => {
    for (const p of procs) await p.kill('SIGKILL');
  });

  it('streams through a chain, survives kill -9 of a middle follower without a snapshot, refuses a loop', async () => {
    const master: MasterHandle = await startMaster(path.join(root, 'master'));
    procs.push(master.proc);
    const f1Dir = path.join(root, 'follower-1');
    const f1: FollowerHandle = await startFollower(1, f1Dir, master.address);
    procs.push(f1.proc);
    const f3 = await startFollower(3, path.join(root, 'follower-3'), master.address, ['--upstream', f1.readAddress]);
    procs.push(f3.proc);
    const f4 = await startFollower(4, path.join(root, 'follower-4'), master.address, ['--upstream', f3.readAddress]);
    procs.push(f4.proc);

    const first = await runTool('push-data', ['--stdin', '--master', master.address], { input: tsv(200, (i) => `a${i}`, (i) => `v${i}`) });
    assert.equal(first.code, 0, first.stderr);
    await waitFor(async () => ((await appliedSeqOf(f4.readAddress)) === 200n ? true : undefined), 'follower 4 to apply seq 200', 60_000, 50);

    // What each node reports of the chain.
    const s4 = await status(f4.readAddress);
    assert.deepEqual(s4.self?.chain, [3, 1]);
    assert.equal(s4.self?.upstreamAddress, f3.readAddress);
    assert.equal(s4.self?.masterAddress, master.address);
    const s1 = await status(f1.readAddress);
    assert.deepEqual(s1.followers.map((f) => [f.followerId, f.connected]), [[3, true]]);
    // A follower still refuses writes, naming the master.
    const refused = await runTool('push-data', ['x', 'y', '--no-redirect', '--master', f3.readAddress]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(master.address.replace(/\./g, '\\.')));

    // Writes under load; follower 1 is killed in the middle of them and restarted.
    const load = runTool('push-data', ['--stdin', '--master', master.address], { input: tsv(20_000, (i) => `k${i}`, (i) => `value-${i}`) });
    await waitFor(async () => ((await appliedSeqOf(f3.readAddress)) > 2_000n ? true : undefined), 'follower 3 to apply part of the load', 60_000, 20);
    // Followers 3 and 4 were bootstrapped by a snapshot (follower 1 has no history before its
    // first entries): none is sent from here on.
    const snapshots = (p: ServerProcess) => p.logs.filter((l) => l.msg === 'master is sending a snapshot').length;
    const before = [snapshots(f3.proc), snapshots(f4.proc)];
    await f1.proc.kill('SIGKILL');
    const f1b = await restartFollower(1, f1Dir, master.address, f1.readAddress);
    procs.push(f1b);
    const loaded = await load;
    assert.equal(loaded.code, 0, loaded.stderr);
    const lastSeq = BigInt((await status(master.address)).lastSeq);
    for (const a of [f1.readAddress, f3.readAddress, f4.readAddress]) {
      await waitFor(async () => ((await appliedSeqOf(a)) === lastSeq ? true : undefined), `${a} to apply seq ${lastSeq}`, 90_000, 50);
    }
    assert.equal(snapshots(f1b), 0, 'follower 1 resumed from its data directory');
    assert.deepEqual([snapshots(f3.proc), snapshots(f4.proc)], before, 'no snapshot after the kill');
    assert.ok(f3.proc.logs.filter((l) => l.msg === 'connected to master; catching up' || l.msg === 'connected to master; streaming').length >= 2, 'follower 3 re-attached');
    assert.deepEqual((await status(f1.readAddress)).followers.map((f) => [f.followerId, f.connected]), [[3, true]]);
    const d = await Promise.all([master.address, f1.readAddress, f3.readAddress, f4.readAddress].map(digestOf));
    assert.equal(d[0].seq, lastSeq.toString());
    assert.deepEqual(d.map((x) => [x.digest, x.seq, x.keys]), d.map(() => [d[0].digest, d[0].seq, d[0].keys]));

    // Follower 1 told to follow follower 3, which streams from it: FOLLOW_LOOP, nothing applied.
    await f1b.kill('SIGKILL');
    const f1c = await restartFollower(1, f1Dir, master.address, f1.readAddress, ['--upstream', f3.readAddress]);
    procs.push(f1c);
    const loop = await f1c.waitForLog(/cannot follow/, 30_000);
    assert.equal(loop.code, 'FOLLOW_LOOP');
    const more = await runTool('push-data', ['after', 'loop', '--master', master.address]);
    assert.equal(more.code, 0, more.stderr);
    // A later attempt, after the write, is refused again (the follower retries with backoff).
    await f1c.waitForLog(/cannot follow/, 30_000, f1c.logs.length);
    assert.equal(await appliedSeqOf(f1.readAddress), lastSeq);
    assert.ok(!f1c.hasLog('connected to master; streaming') && !f1c.hasLog('connected to master; catching up'), 'follower 1 never streamed');
  });
});
