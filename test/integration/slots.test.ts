import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { metaKey, MetaName, slotRange } from '../../src/storage/layout.js';
import { MAX_SEQ } from '../../src/wire/seq.js';
import { openStore } from '../../src/storage/level-store.js';
import { status, tsv, waitConverged } from '../helpers/cluster.js';
import { encodeMaster, MASTER, RawClient } from '../helpers/raw-client.js';
import { metric, scrapeMetrics } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/** Follower id -> persisted slot position, read straight from a stopped master's store. */
async function persistedSlots(masterDir: string): Promise<Map<number, bigint>> {
  const db = await openStore(masterDir, { create: false });
  try {
    const prefix = metaKey(MetaName.SLOT_PREFIX).length;
    const slots = new Map<number, bigint>();
    for await (const [key, value] of db.iterator(slotRange())) slots.set(Number(key.subarray(prefix).toString('ascii')), value.readBigUInt64BE(0));
    return slots;
  } finally {
    await db.close();
  }
}

/**
 * Replication slots exist only for subscriptions the master accepted. A refused Subscribe
 * (FOLLOWER_AHEAD, an invalid position, a duplicate id) must leave no slot, must not show
 * in status, must not be persisted, and must not hold the log; a known follower's slot is
 * left exactly as it was. Followers that were streamed the log or sent a snapshot keep
 * their slots across restarts of the master and of themselves.
 */
describe('replication slots: only accepted subscriptions get one', () => {
  const root = tempDir();
  const masterDir = path.join(root, 'master');
  const masterArgs = ['--retain-entries', '10', '--trim-interval-ms', '100', '--slot-max-lag-entries', '1000000'];
  let master: MasterHandle | undefined;
  const followers = new Map<number, FollowerHandle>();
  const push = (input: string) => runTool('push-data', ['--stdin', '--master', master!.address], { input });
  after(async () => {
    for (const f of followers.values()) await f.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('refused subscribes for new ids leave no slot, in status, on disk, or in what the log keeps', { timeout: 120_000 }, async () => {
    master = await startMaster(masterDir, '127.0.0.1:0', masterArgs);
    // Follower 1 subscribes to an empty master: it is streamed the log from seq 1.
    followers.set(1, await startFollower(1, path.join(root, 'follower-1'), master.address));
    await followers.get(1)!.proc.waitForLog(/^connected to master/);
    assert.equal((await push(tsv(50, (i) => `a-${i}`, (i) => `v${i}`))).code, 0);
    // Follower 2 joins a master with data: it is sent a snapshot.
    followers.set(2, await startFollower(2, path.join(root, 'follower-2'), master.address));
    await followers.get(2)!.proc.waitForLog('master is sending a snapshot');
    await waitConverged(master.address, [1, 2]);

    const raw = new RawClient(master.address);
    const { historyId } = await status(master.address);
    const subscribe = (req: object) => raw.stream(MASTER.Subscribe, encodeMaster('Subscribe', { readAddress: '127.0.0.1:9', durable: true, ...req }));
    const refused = async (req: object, code: grpc.status, errorCode: string) => {
      const { err, messages } = await subscribe(req);
      assert.equal(messages.length, 0, `${JSON.stringify(req)}: nothing streamed`);
      assert.ok(err, `${JSON.stringify(req)}: refused`);
      assert.equal(err.code, code, err.details);
      assert.equal(err.metadata.get('lr-error-code')[0], errorCode, err.details);
    };
    // A duplicate of a connected follower's id changes nothing about it.
    await refused({ followerId: 2, fromSeq: '1', prevChecksum: 0 }, grpc.status.ALREADY_EXISTS, 'DUPLICATE_FOLLOWER');
    for (const f of followers.values()) await f.proc.kill('SIGTERM');
    followers.clear();
    await waitFor(async () => (await status(master!.address)).followers.every((f) => !f.connected), 'both followers to be disconnected');
    const known = (await status(master.address)).followers.find((f) => f.followerId === 1)!;

    // New ids, each refused after the master looked at its position.
    await refused({ followerId: 201, fromSeq: '1000000', historyId, prevChecksum: 1 }, grpc.status.OUT_OF_RANGE, 'FOLLOWER_AHEAD');
    await refused({ followerId: 202, fromSeq: MAX_SEQ.toString(), historyId, prevChecksum: 1 }, grpc.status.OUT_OF_RANGE, 'FOLLOWER_AHEAD');
    await refused({ followerId: 203, fromSeq: '1', prevChecksum: 5 }, grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    await refused({ followerId: 204, fromSeq: '0' }, grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    // A known follower's id, refused: its slot, read address and durability stay as they were.
    await refused({ followerId: 1, fromSeq: '1000000', historyId, prevChecksum: 1, durable: false }, grpc.status.OUT_OF_RANGE, 'FOLLOWER_AHEAD');
    raw.close();

    const ids = (s: Awaited<ReturnType<typeof status>>) => s.followers.map((f) => f.followerId);
    let s = await status(master.address);
    assert.deepEqual(ids(s), [1, 2], 'no record for a refused new id');
    const one = s.followers.find((f) => f.followerId === 1)!;
    assert.equal(one.appliedSeq, '50');
    assert.equal(one.readAddress, known.readAddress, 'the refused subscriber did not take over the read address');
    assert.equal(one.durable, known.durable);
    assert.equal(one.connected, false);
    assert.match(one.lastError, /^FOLLOWER_AHEAD: /, 'the refusal is shown on the known follower');

    // 200 more writes: the log is trimmed up to what followers 1 and 2 (at 50) still need,
    // exactly as if the refused subscribers never came (a slot for any of them would keep seq 1 on).
    assert.equal((await push(tsv(200, (i) => `b-${i}`, (i) => `v${i}`))).code, 0);
    await waitFor(async () => (await status(master!.address)).firstSeq === '51', 'the log to be trimmed up to seq 51');

    // Clean restart of the master: only the accepted followers' slots were persisted.
    const address = master.address;
    await master.proc.kill('SIGTERM');
    master = undefined;
    assert.deepEqual([...(await persistedSlots(masterDir)).entries()].sort(([a], [b]) => a - b), [[1, 50n], [2, 50n]]);
    master = await startMaster(masterDir, address, masterArgs);
    s = await status(master.address);
    assert.deepEqual(ids(s), [1, 2], 'after a restart, only the slots of accepted followers');
    assert.equal(s.firstSeq, '51');
    assert.ok(s.followers.every((f) => f.appliedSeq === '50' && !f.slotLost));

    // Both followers restart and resume from their slots (the log, no snapshot).
    for (const id of [1, 2]) {
      const f = await startFollower(id, path.join(root, `follower-${id}`), master.address);
      followers.set(id, f);
      const line = await f.proc.waitForLog(/^connected to master/);
      assert.equal(line.fromSeq, '51', `follower ${id} resumes from the log`);
      assert.equal(f.proc.hasLog('master is sending a snapshot'), false);
    }
    await waitConverged(master.address, [1, 2]);
    // Nothing else holds the log: it shrinks to the newest 10 entries.
    await waitFor(async () => {
      const t = await status(master!.address);
      return t.firstSeq === String(Number(t.lastSeq) - 9);
    }, 'the log to keep only the newest 10 entries');
    assert.deepEqual(ids(await status(master.address)), [1, 2]);
  });
});

/**
 * A follower gone for good pins the log through its slot; replication-admin drop-slot
 * (pg_drop_replication_slot) lets the operator let go of it: refused while the follower is
 * connected (unless forced), deleted durably, and the log moves on at the next pass.
 */
describe('replication-admin drop-slot', () => {
  const root = tempDir();
  const masterDir = path.join(root, 'master');
  const masterArgs = ['--retain-entries', '10', '--trim-interval-ms', '100'];
  let master: MasterHandle | undefined;
  const followers = new Map<number, FollowerHandle>();
  const push = (input: string) => runTool('push-data', ['--stdin', '--master', master!.address], { input });
  const admin = (args: string[]) => runTool('replication-admin', [...args, '--master', master!.address]);
  const refusedWith = (r: { code: number | null; stderr: string }, exit: number, code: string) => {
    assert.equal(r.code, exit, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^replication-admin: .*\\[${code}\\]\\n$`));
  };
  after(async () => {
    for (const f of followers.values()) await f.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('refuses a connected follower and an unknown id; a dropped slot stops holding the log and stays dropped across a restart', { timeout: 120_000 }, async () => {
    master = await startMaster(masterDir, '127.0.0.1:0', masterArgs);
    for (const id of [1, 2]) followers.set(id, await startFollower(id, path.join(root, `follower-${id}`), master.address));
    assert.equal((await push(tsv(20, (i) => `a-${i}`, (i) => `v${i}`))).code, 0);
    await waitConverged(master.address, [1, 2]);

    refusedWith(await admin(['drop-slot', '2']), 5, 'FOLLOWER_CONNECTED');
    refusedWith(await admin(['drop-slot', '9']), 1, 'SLOT_NOT_FOUND');
    refusedWith(await admin(['drop-slot', '0']), 2, 'INVALID_FOLLOWER_ID');
    assert.deepEqual((await status(master.address)).followers.map((f) => f.followerId), [1, 2], 'a refused drop changes nothing');

    // Follower 2 is gone for good: its slot pins the log at seq 21 despite --retain-entries 10.
    await followers.get(2)!.proc.kill('SIGKILL');
    followers.delete(2);
    await waitFor(async () => !(await status(master!.address)).followers.find((f) => f.followerId === 2)!.connected, 'follower 2 to be disconnected');
    assert.equal((await push(tsv(300, (i) => `b-${i}`, (i) => `v${i}`))).code, 0);
    await waitConverged(master.address, [1]);
    const pinned = await waitFor(async () => {
      const s = await status(master!.address);
      return s.lastSeq === '320' && s.firstSeq === '21' && s.followers.find((f) => f.followerId === 1)!.slotEntries === '0' ? s : undefined;
    }, 'the log to be trimmed up to what follower 2 needs');
    const two = pinned.followers.find((f) => f.followerId === 2)!;
    assert.deepEqual([two.appliedSeq, two.slotEntries], ['20', '300'], 'its slot holds the 300 entries after its position');
    const json = JSON.parse((await runTool('replication-status', ['--master', master.address, '--json'])).stdout);
    assert.equal(json.followers.find((f: { id: number }) => f.id === 2).slotEntries, '300');
    assert.equal(typeof json.master.logBytes, 'number');
    assert.match((await runTool('replication-status', ['--master', master.address])).stdout, /^2\s+disconnected\s+20\s+20\s+300\s+\S+\s+\S+ ago\s+\S+ ago\s+\S+\s+300\s+\S+\s+yes\s/m);

    const dropped = await admin(['drop-slot', '2', '--json']);
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.deepEqual(JSON.parse(dropped.stdout), { followerId: 2, appliedSeq: '20', wasConnected: false, slotLost: false, firstSeq: '21' });
    await master.proc.waitForLog(/^replication slot of follower 2 dropped/);
    await waitFor(async () => (await status(master!.address)).firstSeq === '311', 'the log to keep only the newest 10 entries');
    assert.deepEqual((await status(master.address)).followers.map((f) => f.followerId), [1], 'follower 2 is no longer listed');
    assert.equal(metric(await scrapeMetrics(master.metricsAddress!), 'lr_master_log_retained_entries'), 10);
    refusedWith(await admin(['drop-slot', '2']), 1, 'SLOT_NOT_FOUND');

    // Forced, on a connected follower: its stream ends, and the running follower subscribes
    // again as a new follower, getting a new slot (so stop a follower before dropping its slot).
    const forced = await admin(['drop-slot', '1', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /^dropped the replication slot of follower 1 \(it had applied up to seq 320; its stream was ended\)/);
    const line = await followers.get(1)!.proc.waitForLog(/^the master dropped the replication slot of follower 1/);
    assert.equal(line.code, 'SLOT_DROPPED');
    assert.equal((await push('c\t1\n')).code, 0);
    await waitConverged(master.address, [1]);

    // A clean restart: slot 2 stays dropped; follower 1 (stopped meanwhile) is listed from
    // its slot, with what the restarted master cannot know shown as unknown.
    await followers.get(1)!.proc.kill('SIGTERM');
    followers.delete(1);
    await waitFor(async () => !(await status(master!.address)).followers[0].connected, 'follower 1 to be disconnected');
    const address = master.address;
    await master.proc.kill('SIGTERM');
    master = undefined;
    assert.deepEqual([...(await persistedSlots(masterDir)).keys()], [1]);
    master = await startMaster(masterDir, address, masterArgs);
    const s = await status(master.address);
    assert.deepEqual(s.followers.map((f) => [f.followerId, f.seen, f.connected]), [[1, false, false]]);
    const text = (await runTool('replication-status', ['--master', master.address])).stdout;
    assert.match(text, /^1\s+disconnected\s+321\s+321\s+0\s+0\.0s\s+unknown\s+unknown\s+0B\s+0\s+0B\s+unknown\s+unknown\s+unknown$/m, text);
    assert.doesNotMatch(text, /never|-0\.0s/);
    const after = JSON.parse((await runTool('replication-status', ['--master', master.address, '--json'])).stdout).followers[0];
    assert.deepEqual([after.durable, after.lastAckTimeMs, after.sinceMs], [null, null, null]);
    // Counters of the new process start at 0 for every known label value.
    const m = await scrapeMetrics(master.metricsAddress!);
    assert.equal(metric(m, 'lr_master_subscriptions_total', { result: 'refused' }), 0);
    assert.equal(metric(m, 'lr_master_errors_total', { code: 'SLOT_NOT_FOUND' }), 0);
    assert.equal(metric(m, 'lr_master_streamed_entries_total', { follower: '1' }), 0);
  });
});
