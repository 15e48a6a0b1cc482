import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { ErrorCode } from '../../src/common/errors.js';
import type { ReplicaStore, SlotRecord } from '../../src/storage/interfaces.js';
import { entryCommitTimeMs, entrySeq, GENESIS_CHECKSUM } from '../../src/wire/entry-codec.js';
import type { StorageImpl } from './storage-conformance.js';
import { digestNow, installSnapshot, readRows, rejectsWith } from './storage-conformance-checks.js';
import { conformanceTest } from './storage-conformance-env.js';
import { commitHistory, dataAfter, digestOf, entries, MiB } from './storage-conformance-fixtures.js';

const hex = (bufs: Buffer[]) => bufs.map((b) => b.toString('hex'));
const rowsDigest = (rows: [Buffer, Buffer][]) => digestOf(new Map(rows.map(([k, v]) => [k.toString('hex'), v])));

/** A replica store as a ServingStore (chained followers stream from it): its log, snapshots and slots. */
export function servingReplicaConformance(impl: StorageImpl): void {
  const test = conformanceTest(impl);

  describe('replica store serving', () => {
    test("a replica's log holds the entries it applied, byte for byte the master's, also after a restart", async (env) => {
      const master = await env.master();
      await commitHistory(master, 9);
      const all = await entries(master, 1n, 9n);
      const node = await env.node();
      const replica = await env.replica(node);
      assert.deepEqual([replica.log.firstSeq, replica.log.lastSeq, replica.log.lastChecksum], [1n, 0n, GENESIS_CHECKSUM]);
      assert.equal(await replica.log.checksumAt(0n), GENESIS_CHECKSUM);
      const waited = replica.log.waitForAppend(60_000);
      await replica.apply(all.slice(0, 4), master.log.historyId);
      await waited;
      await replica.apply(all.slice(4), master.log.historyId);
      const check = async ({ log }: ReplicaStore) => {
        assert.ok(log.historyId.equals(master.log.historyId));
        assert.deepEqual([log.firstSeq, log.lastSeq, log.lastChecksum, log.lastCommitTimeMs], [1n, 9n, master.log.lastChecksum, master.log.lastCommitTimeMs]);
        assert.deepEqual(hex(await log.read(1n, 100, MiB)), hex(all));
        assert.deepEqual((await log.read(6n, 2, MiB)).map(entrySeq), [6n, 7n]);
        assert.ok((await log.entryAt(5n))!.equals(all[4]));
        assert.equal(await log.checksumAt(5n), await master.log.checksumAt(5n));
        assert.ok((await log.bytesFrom(1n)) >= (await log.bytesFrom(9n)));
        const cached = log.readCached(8n, 2, MiB);
        if (cached) assert.deepEqual(hex(cached), hex(all.slice(7)));
      };
      await check(replica);
      await env.close(replica);
      await check(await env.replica(node));
    });

    test('after a failed apply, ensureWritable keeps the same log object, which ends where the store does and goes on', async (env, t) => {
      const node = await env.node();
      if (!node.failNextWrite) return t.skip('this implementation has no fault seam');
      const master = await env.master();
      await commitHistory(master, 6);
      const all = await entries(master, 1n, 6n);
      const replica = await env.replica(node);
      await replica.apply(all.slice(0, 3), master.log.historyId);
      const { log } = replica;
      node.failNextWrite();
      await rejectsWith(replica.apply(all.slice(3), master.log.historyId), ErrorCode.STORE_FAILED);
      await replica.ensureWritable();
      assert.equal(replica.log, log, 'a reopen replaced the log object that servers hold');
      assert.deepEqual([log.lastSeq, log.lastChecksum], [replica.appliedSeq, replica.appliedChecksum]);
      const waited = log.waitForAppend(60_000);
      await replica.apply(all.slice(Number(replica.appliedSeq)), master.log.historyId);
      await waited;
      assert.deepEqual(hex(await log.read(1n, 10, MiB)), hex(all));
    });

    test("a replica's log restarts at a snapshot's position and goes on from there", async (env) => {
      const master = await env.master();
      await commitHistory(master, 5);
      const replica = await env.replica();
      await replica.apply(await entries(master, 1n, 3n), master.log.historyId);
      await commitHistory(master, 7);
      await installSnapshot(replica, master);
      assert.deepEqual([replica.log.firstSeq, replica.log.lastSeq, replica.log.lastChecksum], [13n, 12n, await master.log.checksumAt(12n)]);
      assert.equal(await replica.log.checksumAt(12n), await master.log.checksumAt(12n), 'the base names its checksum');
      await rejectsWith(replica.log.read(12n, 10, MiB), ErrorCode.LOG_TRIMMED);
      assert.deepEqual(await replica.log.read(13n, 10, MiB), []);
      await commitHistory(master, 3);
      await replica.apply(await entries(master, 13n, 15n), master.log.historyId);
      assert.deepEqual(hex(await replica.log.read(13n, 10, MiB)), hex(await entries(master, 13n, 15n)));
    });

    test("snapshot(): a replica's active generation with its position, from one instant, untouched by later applies and switches", async (env) => {
      const master = await env.master();
      await commitHistory(master, 12);
      const log = await entries(master, 1n, 12n);
      const replica = await env.replica();
      const empty = await replica.snapshot();
      assert.deepEqual([empty.seq, empty.checksum, empty.commitTimeMs], [0n, 0, 0]);
      assert.deepEqual(await readRows(empty, 10, MiB), []);
      await empty.close();
      await replica.apply(log.slice(0, 6), master.log.historyId);
      const snap = await replica.snapshot();
      await replica.apply(log.slice(6, 9), master.log.historyId);
      assert.deepEqual([snap.seq, snap.checksum, snap.commitTimeMs], [6n, await master.log.checksumAt(6n), entryCommitTimeMs(log[5])]);
      assert.deepEqual(rowsDigest(await readRows(snap, 2, MiB)), digestOf(dataAfter(6)));
      assert.equal(await snap.countKeys(new AbortController().signal), BigInt(dataAfter(6).size));
      // A snapshot of the replica taken before it switched generations still reads the old one.
      await installSnapshot(replica, master);
      assert.deepEqual(rowsDigest(await readRows(snap, 100, MiB)), digestOf(dataAfter(6)));
      await snap.close();
      const after = await replica.snapshot();
      assert.equal(after.seq, 12n);
      assert.deepEqual(rowsDigest(await readRows(after, 100, MiB)), digestOf(dataAfter(12)));
      assert.deepEqual({ ...rowsDigest(await readRows(after, 100, MiB)), seq: after.seq }, await digestNow(replica));
      await after.close();
    });

    test("slots on a replica: saved, loaded, dropped, written by trimTo even with nothing to trim, and kept across a restart", async (env) => {
      const master = await env.master();
      await commitHistory(master, 6);
      const node = await env.node();
      const replica = await env.replica(node);
      await replica.apply(await entries(master, 1n, 6n), master.log.historyId);
      assert.deepEqual(await replica.loadSlots(), []);
      const slots: SlotRecord[] = [
        { followerId: 2, appliedSeq: 3n, lost: false },
        { followerId: 9, appliedSeq: 0n, lost: true },
      ];
      await replica.saveSlots(slots, true);
      assert.deepEqual(await replica.loadSlots(), slots);
      await replica.dropSlot(9, true);
      await replica.dropSlot(77, false);
      assert.deepEqual(await replica.loadSlots(), [slots[0]]);
      const moved: SlotRecord[] = [{ followerId: 2, appliedSeq: 5n, lost: false }];
      assert.equal(await replica.log.trimTo(replica.log.firstSeq, 10n, moved), replica.log.firstSeq);
      assert.deepEqual(await replica.loadSlots(), moved);
      await env.close(replica);
      const again = await env.replica(node);
      assert.deepEqual(await again.loadSlots(), moved);
      assert.equal(again.appliedSeq, 6n);
    });
  });
}
