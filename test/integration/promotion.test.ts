import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readVia, status, tsv } from '../helpers/cluster.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';
import { callUnary, masterClient, storeClient } from '../../src/wire/rpc-client.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';
import type { DigestResponse__Output } from '../../src/wire/generated/levelreplicator/v1/DigestResponse.js';

async function digestOf(address: string): Promise<DigestResponse__Output> {
  const client = storeClient(address);
  try {
    return await callUnary<DigestResponse__Output>((o, cb) => client.Digest({}, o, cb), 10_000, { role: 'follower', address });
  } finally {
    client.close();
  }
}

/** Polls until the node at address reports follower `id` connected at its last seq. */
async function waitFollowerCaughtUp(address: string, id: number): Promise<void> {
  await waitFor(
    async () => {
      const s = await status(address);
      return s.followers.some((f) => f.followerId === id && f.connected && f.appliedSeq === s.lastSeq) ? true : undefined;
    },
    `follower ${id} to catch up with ${address}`,
    60_000,
    50,
  );
}

/**
 * A dead master: its most advanced follower is promoted (epoch 2), the other follower
 * continues from its applied seq without a snapshot, and the old master, restarted, is told
 * of the new epoch, writes the writes only it had to a rollback file, and rejoins as a
 * follower; every node ends with the same digest.
 */
describe('promotion of a follower when the master is dead; the old master rejoins', () => {
  const root = tempDir();
  const handles: (MasterHandle | FollowerHandle)[] = [];
  after(async () => {
    for (const h of handles) await h.proc.kill('SIGKILL');
  });

  it('promotes, re-points, rolls back exactly the unreplicated writes, converges', async () => {
    const mDir = path.join(root, 'master');
    const f1Dir = path.join(root, 'follower-1');
    const f2Dir = path.join(root, 'follower-2');
    const master = await startMaster(mDir, undefined, ['--node-id', '9']);
    handles.push(master);
    let f1 = await startFollower(1, f1Dir, master.address);
    let f2 = await startFollower(2, f2Dir, master.address);
    handles.push(f1, f2);
    const put = await runTool('push-data', ['--stdin', '--master', master.address], { input: tsv(50, (i) => `k${i}`, (i) => `v${i}`) });
    assert.equal(put.code, 0, put.stderr);
    await waitFollowerCaughtUp(master.address, 1);
    await waitFollowerCaughtUp(master.address, 2);

    // The followers stop; the master acknowledges 5 writes nobody else has, then dies.
    await f1.proc.stop();
    await f2.proc.stop();
    const lost = await runTool('push-data', ['--stdin', '--master', master.address], { input: tsv(5, (i) => `lost${i}`, (i) => `only-on-the-old-master-${i}`) });
    assert.equal(lost.code, 0, lost.stderr);
    await master.proc.kill('SIGKILL');
    f1 = await startFollower(1, f1Dir, master.address);
    f2 = await startFollower(2, f2Dir, master.address);
    handles.push(f1, f2);

    // Promotion: positions compared, follower 1 becomes the master of epoch 2.
    const promote = await runTool('replication-admin', ['promote', '1', '--nodes', [f1.readAddress, f2.readAddress, master.address].join(','), '--json']);
    assert.equal(promote.code, 0, promote.stderr);
    assert.match(promote.stderr, /positions compared/);
    const res = JSON.parse(promote.stdout) as { epoch: number; firstSeq: string };
    assert.equal(res.epoch, 2);
    assert.equal(res.firstSeq, '51');
    const s1 = await status(f1.readAddress);
    assert.equal(s1.role, 'master');
    assert.deepEqual(s1.epochs.map((e) => [e.epoch, e.firstSeq]), [[1, '1'], [2, '51']]);

    // Writes go to the new master; follower 2 follows it from seq 51, no snapshot.
    const after1 = await runTool('push-data', ['new', 'epoch', '--master', f1.readAddress, '--json']);
    assert.equal(after1.code, 0, after1.stderr);
    assert.equal((JSON.parse(after1.stdout) as { epoch: number }).epoch, 2);
    await waitFollowerCaughtUp(f1.readAddress, 2);
    assert.ok(!f2.proc.hasLog('master is sending a snapshot'), 'follower 2 continued from its applied seq');

    // A write to the dead master's address from a client that knows epoch 2 is never taken by epoch 1.
    // The old master restarts: the new master's notice deposes it; it rejoins as follower 9.
    const old = await startMaster(mDir, master.address, ['--node-id', '9']);
    handles.push(old);
    const rollbackDir = path.join(mDir, 'rollback');
    const files = await waitFor(
      async () => (fs.existsSync(rollbackDir) ? fs.readdirSync(rollbackDir).filter((f) => f.endsWith('.jsonl')) : []).at(0),
      'the rollback file',
      60_000,
      50,
    );
    const lines = fs.readFileSync(path.join(rollbackDir, files), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines[0].rollback.forkSeq, '50');
    const entries = lines.slice(1);
    assert.deepEqual(
      entries.map((e) => [e.seq, e.epoch, e.mutations[0].op, e.mutations[0].key, e.mutations[0].value]),
      [0, 1, 2, 3, 4].map((i) => [String(51 + i), 1, 'put', `lost${i}`, `only-on-the-old-master-${i}`]),
    );
    await waitFollowerCaughtUp(f1.readAddress, 9);
    const refused = await runTool('push-data', ['x', 'y', '--no-redirect', '--master', old.address]);
    assert.notEqual(refused.code, 0, 'the deposed master takes no write');

    const d = await Promise.all([f1.readAddress, f2.readAddress, old.address].map(digestOf));
    assert.equal(d[0].seq, '51');
    assert.deepEqual(d.map((x) => [x.digest, x.seq, x.keys]), [d[0], d[0], d[0]].map((x) => [x.digest, x.seq, x.keys]));
  });
});

describe('promotion after kill -9 of the master under load with --ack-followers 1', () => {
  const root = tempDir();
  const handles: (MasterHandle | FollowerHandle)[] = [];
  after(async () => {
    for (const h of handles) await h.proc.kill('SIGKILL');
  });

  it('every acknowledged write is on the new master; the other follower continues; the rollback file holds only unacknowledged writes', async () => {
    const mDir = path.join(root, 'master');
    const master = await startMaster(mDir, undefined, ['--node-id', '9', '--ack-followers', '1', '--ack-timeout-ms', '2000']);
    const f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    const f2 = await startFollower(2, path.join(root, 'follower-2'), master.address);
    handles.push(master, f1, f2);
    const acked = new Set<string>();
    let writing = true;
    const client = masterClient(master.address);
    const writer = async (w: number) => {
      for (let i = 0; writing; i++) {
        const key = `w${w}-${i}`;
        try {
          const res = await callUnary<WriteResponse__Output>(
            (o, cb) => client.Write({ writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from(key), value: Buffer.from('v') }] }] }, o, cb),
            5_000,
            { role: 'master', address: master.address },
          );
          if (res.ackStatus === 'REPLICATED') acked.add(key);
        } catch {
          return; // the master is gone
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await waitFor(() => (acked.size >= 300 ? true : undefined), 'acknowledged writes', 30_000);
    // A follower that first subscribed after the writes began was bootstrapped by a
    // snapshot: only snapshots after the kill count against "continues without one".
    const snapshotsOf = (f: typeof f1) => f.proc.logs.filter((l) => l.msg === 'master is sending a snapshot').length;
    const snapshotsBefore = new Map([f1, f2].map((f) => [f, snapshotsOf(f)]));
    await master.proc.kill('SIGKILL');
    writing = false;
    await Promise.all(writers);
    client.close();

    const nodes = [f1.readAddress, f2.readAddress, master.address].join(',');
    let promoted = f1;
    let other = f2;
    let promote = await runTool('replication-admin', ['promote', '1', '--nodes', nodes, '--json']);
    if (promote.code === 5 && /PROMOTION_REFUSED/.test(promote.stderr)) {
      [promoted, other] = [f2, f1];
      promote = await runTool('replication-admin', ['promote', '2', '--nodes', nodes, '--json']);
    }
    assert.equal(promote.code, 0, promote.stderr);
    const res = JSON.parse(promote.stdout) as { epoch: number; appliedSeq: string };
    for (const k of acked) assert.notEqual((await readVia(promoted.readAddress, k)).value, undefined, `acknowledged ${k} is on the new master`);
    const otherId = other === f1 ? 1 : 2;
    await waitFollowerCaughtUp(promoted.readAddress, otherId);
    assert.equal(snapshotsOf(other), snapshotsBefore.get(other), 'the other follower continued from its applied seq, without a snapshot');

    const old = await startMaster(mDir, master.address, ['--node-id', '9']);
    handles.push(old);
    await waitFollowerCaughtUp(promoted.readAddress, 9);
    const rollbackDir = path.join(mDir, 'rollback');
    const files = fs.existsSync(rollbackDir) ? fs.readdirSync(rollbackDir).filter((f) => f.endsWith('.jsonl')) : [];
    for (const f of files) {
      const lines = fs.readFileSync(path.join(rollbackDir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(lines[0].rollback.fromSeq, String(BigInt(res.appliedSeq) + 1n));
      for (const e of lines.slice(1)) for (const m of e.mutations) assert.ok(!acked.has(m.key), `${m.key} was acknowledged yet rolled back`);
    }
    const d = await Promise.all([promoted.readAddress, other.readAddress, old.address].map(digestOf));
    assert.deepEqual(d.map((x) => [x.digest, x.seq]), [d[0], d[0], d[0]].map((x) => [x.digest, x.seq]));
  });
});
