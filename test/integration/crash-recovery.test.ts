import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { waitConverged } from '../helpers/cluster.js';
import { LoadGenerator } from '../helpers/load.js';
import { runTool, startFollower, startMaster, tempDir, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';
import { diffStores, readStore } from '../helpers/stores.js';

describe('crash recovery under concurrent load', () => {
  const root = tempDir();
  const dirs = { master: path.join(root, 'master'), f1: path.join(root, 'follower-1'), f2: path.join(root, 'follower-2') };
  const live: { master?: MasterHandle; f1?: FollowerHandle; f2?: FollowerHandle } = {};
  after(async () => {
    for (const h of [live.f1, live.f2, live.master]) await h?.proc.kill('SIGKILL');
  });

  it('loses no acknowledged write and converges after SIGKILL of a follower and of the master', { timeout: 240_000 }, async () => {
    live.master = await startMaster(dirs.master);
    const address = live.master.address; // restarts reuse this port
    live.f1 = await startFollower(1, dirs.f1, address);
    live.f2 = await startFollower(2, dirs.f2, address);

    const load = new LoadGenerator(address, { writers: 4, batch: 25, prefix: 'crash' });
    load.start();

    // Follower 1 dies mid-stream (entries in flight), then comes back.
    await load.untilAcked(2_500);
    await live.f1.proc.kill('SIGKILL');
    await load.untilAcked(5_000);
    live.f1 = await startFollower(1, dirs.f1, address);

    // The master dies mid-load: in-flight writes fail, acknowledged ones must survive.
    await load.untilAcked(7_500);
    await live.master.proc.kill('SIGKILL');
    const ackedBeforeMasterKill = load.acked.length;
    live.master = await startMaster(dirs.master, address);

    await load.untilAcked(Math.max(12_000, ackedBeforeMasterKill + 3_000));
    await load.stop();
    assert.ok(load.acked.length >= 10_000, `only ${load.acked.length} writes acknowledged`);

    // Seqs of acknowledged writes are unique.
    const seqs = new Set(load.acked.map((w) => w.seq));
    assert.equal(seqs.size, load.acked.length, 'two acknowledged writes share a seq');

    const lastSeq = await waitConverged(address, [1, 2]);

    // Follower 2 lived through the master restart: it logged the state change once each
    // way, however many reconnect attempts the restart took.
    const f2Logs = live.f2.proc.logs.map((l) => l.msg);
    assert.equal(f2Logs.filter((m) => m === 'disconnected from master; reconnecting with backoff').length, 1);
    assert.equal(f2Logs.filter((m) => m?.startsWith('connected to master')).length, 2);
    assert.ok(lastSeq >= BigInt(load.acked.length));

    // Digests of all three running nodes are equal, at the same seq.
    const digest = await runTool('store-digest', ['master', '1', '2', '--json', '--data-root', root]);
    assert.equal(digest.code, 0, digest.stderr);
    const rows = digest.stdout.trim().split('\n').map((l) => JSON.parse(l) as { digest: string; seq: string; via: string });
    assert.equal(rows.length, 3);
    for (const r of rows) {
      assert.equal(r.via, 'rpc');
      assert.equal(r.seq, lastSeq.toString());
      assert.equal(r.digest, rows[0].digest);
    }

    // Clean shutdown on SIGTERM: exit 0, stores closed so they open again below.
    for (const h of [live.f1, live.f2, live.master]) {
      const { code } = await h.proc.kill('SIGTERM');
      assert.equal(code, 0);
    }
    live.f1 = live.f2 = live.master = undefined;

    // Entry by entry: every acknowledged write is on all three; the stores are identical.
    const master = await readStore(dirs.master);
    const f1 = await readStore(dirs.f1);
    const f2 = await readStore(dirs.f2);
    for (const w of load.acked) assert.equal(master.data.get(w.key), w.value, `acknowledged write ${w.key} (seq ${w.seq}) missing on the master`);
    assert.equal(diffStores(master.data, f1.data), '');
    assert.equal(diffStores(master.data, f2.data), '');
    assert.equal(f1.appliedSeq, lastSeq);
    assert.equal(f2.appliedSeq, lastSeq);

    // Offline digests match too (read straight from the stores).
    const offline = await runTool('store-digest', ['master', '1', '2', '--json', '--data-root', root]);
    const offRows = offline.stdout.trim().split('\n').map((l) => JSON.parse(l) as { digest: string; via: string });
    assert.deepEqual(offRows.map((r) => r.via), ['store', 'store', 'store']);
    assert.ok(offRows.every((r) => r.digest === rows[0].digest));
  });
});
