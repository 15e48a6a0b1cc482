import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { metaKey, MetaName, slotRange } from '../../src/storage/layout.js';
import { MAX_SEQ } from '../../src/wire/seq.js';
import { openStore } from '../../src/storage/level-store.js';
import { status, tsv, waitConverged } from '../helpers/cluster.js';
import { encodeMaster, MASTER, RawClient } from '../helpers/raw-client.js';
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
