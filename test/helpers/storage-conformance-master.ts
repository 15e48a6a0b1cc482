import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { SlotRecord } from '../../src/storage/interfaces.js';
import { chainsFrom, entryCommitTimeMs } from '../../src/wire/entry-codec.js';
import type { StorageImpl } from './storage-conformance.js';
import { digestNow, getNow, logPositions, readRows } from './storage-conformance-checks.js';
import { conformanceTest } from './storage-conformance-env.js';
import { commitHistory, dataAfter, digestOf, MiB, put, request, T0, writeOf } from './storage-conformance-fixtures.js';

/** The master store: views, the digest, slots, snapshots, restarts and failed commits. */
export function masterStoreConformance(impl: StorageImpl): void {
  const test = conformanceTest(impl);

  describe('master store', () => {
    test('a view taken before a commit sees neither its data nor its seq', async (env) => {
      const master = await env.master();
      await commitHistory(master, 3);
      const view = master.view();
      await commitHistory(master, 3);
      await master.commitGroup([request([put('k1', 'again')])], T0, true);
      assert.equal(await view.seq(), 3n);
      assert.equal((await view.get(Buffer.from('k6')))?.toString(), undefined);
      assert.equal((await view.get(Buffer.from('k3')))?.toString(), 'v3');
      assert.equal((await view.get(Buffer.from('k1')))?.toString(), undefined, 'k1 was deleted at seq 3');
      assert.deepEqual(await view.digest(), digestOf(dataAfter(3)));
      await view.close();
      assert.equal(await getNow(master, 'k1'), 'again');
    });

    test('views taken while a commit is in flight see its data and its seq together or not at all', async (env) => {
      const master = await env.master();
      for (let ticks = 0; ticks < 8; ticks++) {
        const before = master.log.lastSeq;
        const committing = master.commitGroup([request([put(`t${ticks}`, 'x')], [put(`u${ticks}`, 'y')])], T0, ticks % 2 === 0);
        for (let i = 0; i < ticks; i++) await new Promise((r) => setImmediate(r));
        const view = master.view();
        await committing;
        const [seq, t, u] = [await view.seq(), await view.get(Buffer.from(`t${ticks}`)), await view.get(Buffer.from(`u${ticks}`))];
        await view.close();
        if (seq === before) assert.deepEqual([t, u], [undefined, undefined], `view at seq ${seq} sees data of seq ${before + 1n}`);
        else assert.deepEqual([seq, t?.toString(), u?.toString()], [before + 2n, 'x', 'y'], `view at seq ${seq} and its data disagree`);
      }
    });

    test('the digest is the store digest of the user data, whatever the history', async (env) => {
      const master = await env.master();
      for (const n of [1, 5, 13]) {
        await commitHistory(master, n - Number(master.log.lastSeq));
        assert.deepEqual(await digestNow(master), { ...digestOf(dataAfter(n)), seq: BigInt(n) });
      }
    });

    test('slots are saved and loaded, and survive a restart', async (env) => {
      const node = await env.node();
      const master = await env.master(node);
      assert.deepEqual(await master.loadSlots(), []);
      const slots: SlotRecord[] = [
        { followerId: 2, appliedSeq: 0n, lost: false },
        { followerId: 10, appliedSeq: 2n ** 40n, lost: true },
      ];
      await master.saveSlots(slots, true);
      assert.deepEqual(sortSlots(await master.loadSlots()), slots);
      const moved = [{ ...slots[0], appliedSeq: 7n, lost: true }, { ...slots[1], lost: false }];
      await master.saveSlots(moved, false);
      assert.deepEqual(sortSlots(await master.loadSlots()), moved);
      await env.close(master);
      assert.deepEqual(sortSlots(await (await env.master(node)).loadSlots()), moved);
    });

    test('a dropped slot is gone, also after a restart; the others stay; dropping a missing slot does nothing', async (env) => {
      const node = await env.node();
      const master = await env.master(node);
      const slots: SlotRecord[] = [
        { followerId: 1, appliedSeq: 5n, lost: false },
        { followerId: 2, appliedSeq: 9n, lost: true },
        { followerId: 3, appliedSeq: 0n, lost: false },
      ];
      await master.saveSlots(slots, true);
      await master.dropSlot(2, true);
      assert.deepEqual(sortSlots(await master.loadSlots()), [slots[0], slots[2]]);
      await master.dropSlot(2, true);
      await master.dropSlot(77, false);
      assert.deepEqual(sortSlots(await master.loadSlots()), [slots[0], slots[2]]);
      await env.close(master);
      const again = await env.master(node);
      assert.deepEqual(sortSlots(await again.loadSlots()), [slots[0], slots[2]], 'the drop is durable');
      // A follower that comes back later gets a slot again under the same id.
      await again.saveSlots([{ followerId: 2, appliedSeq: 11n, lost: false }], true);
      assert.deepEqual(sortSlots(await again.loadSlots()), [slots[0], { followerId: 2, appliedSeq: 11n, lost: false }, slots[2]]);
    });

    test('snapshot(): every pair in key order with the position of its instant, untouched by later commits', async (env) => {
      const master = await env.master();
      await commitHistory(master, 10);
      const expected = digestOf(dataAfter(10));
      const snap = await master.snapshot();
      await commitHistory(master, 5); // overwrites, deletes and adds keys
      assert.equal(snap.seq, 10n);
      assert.equal(snap.checksum, await master.log.checksumAt(10n));
      assert.equal(snap.commitTimeMs, entryCommitTimeMs((await master.log.entryAt(10n))!));
      assert.ok(Number.isFinite(snap.approxBytes) && snap.approxBytes >= 0);
      const rows = await readRows(snap, 2, MiB);
      const want = [...dataAfter(10)].map(([k, v]) => [Buffer.from(k, 'hex'), v] as const).sort((a, b) => Buffer.compare(a[0], b[0]));
      assert.deepEqual(rows, want);
      assert.deepEqual(digestOf(new Map(rows.map(([k, v]) => [k.toString('hex'), v]))), expected);
      assert.deepEqual(await readRows(snap, 1000, 1), want, 'a byte bound below one pair still makes progress');
      // The exact count the follower's progress shows, of the same instant, even beside a read.
      const reading = readRows(snap, 2, MiB);
      assert.equal(await snap.countKeys(new AbortController().signal), BigInt(want.length));
      assert.deepEqual(await reading, want);
      const aborted = new AbortController();
      aborted.abort();
      await assert.rejects(snap.countKeys(aborted.signal), { name: 'AbortError' });
      await snap.close();
    });

    test('snapshot() of an empty store is at seq 0 and holds no pairs', async (env) => {
      const master = await env.master();
      const snap = await master.snapshot();
      assert.deepEqual([snap.seq, snap.checksum, snap.commitTimeMs], [0n, 0, 0]);
      assert.deepEqual(await readRows(snap, 10, MiB), []);
      assert.equal(await snap.countKeys(new AbortController().signal), 0n);
      await snap.close();
    });

    test('positions and data survive a restart, and commits continue the chain', async (env) => {
      const node = await env.node();
      const master = await env.master(node);
      await commitHistory(master, 7);
      const positions = logPositions(master);
      await env.close(master);
      const again = await env.master(node);
      assert.deepEqual(logPositions(again), positions);
      assert.deepEqual(await digestNow(again), { ...digestOf(dataAfter(7)), seq: 7n });
      await commitHistory(again, 3);
      assert.ok(chainsFrom((await again.log.entryAt(8n))!, positions.lastChecksum));
      assert.deepEqual(await digestNow(again), { ...digestOf(dataAfter(10)), seq: 10n });
    });

    test('a failed commit leaves the position and the data; after a restart log and data agree', async (env, t) => {
      const node = await env.node();
      if (!node.failNextWrite) return t.skip('this implementation has no fault seam');
      const master = await env.master(node);
      await commitHistory(master, 4);
      const positions = logPositions(master);
      node.failNextWrite();
      await assert.rejects(master.commitGroup([request(writeOf(5))], T0 + 5, true));
      assert.deepEqual(logPositions(master), positions);
      assert.deepEqual(await digestNow(master), { ...digestOf(dataAfter(4)), seq: 4n });
      await env.close(master);
      const again = await env.master(node);
      assert.deepEqual(logPositions(again), positions);
      assert.deepEqual(await digestNow(again), { ...digestOf(dataAfter(4)), seq: 4n });
      await commitHistory(again, 2);
      assert.deepEqual(await digestNow(again), { ...digestOf(dataAfter(6)), seq: 6n });
    });
  });
}

function sortSlots(slots: SlotRecord[]): SlotRecord[] {
  return [...slots].sort((a, b) => a.followerId - b.followerId);
}
