import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { SlotRecord } from '../../src/storage/interfaces.js';
import { chainsFrom } from '../../src/wire/entry-codec.js';
import type { StorageImpl } from './storage-conformance.js';
import { digestNow, installSnapshot, logPositions, readRows } from './storage-conformance-checks.js';
import { h } from './storage-conformance-epochs.js';
import { conformanceTest } from './storage-conformance-env.js';
import { commitHistory, dataAfter, digestOf, entries, MiB } from './storage-conformance-fixtures.js';

/**
 * Role changes inside one process (docs/roles.md): a node's store is closed and its
 * directory (memory disk) opened in the other role. Both roles keep one layout, so the
 * data, its position, the log and the slots carry over.
 */
export function roleChangeConformance(impl: StorageImpl): void {
  const test = conformanceTest(impl);

  describe('role changes', () => {
    test("a master's store opens as a replica's at the same position and data, applies on, and opens as a master again that commits on", async (env) => {
      // A is the master; B follows it.
      const a = await env.node();
      const b = await env.node();
      let masterA = await env.master(a);
      await commitHistory(masterA, 7);
      const history = Buffer.from(masterA.log.historyId);
      let replicaB = await env.replica(b);
      await replicaB.apply(await entries(masterA, 1n, 7n), history);
      const atSeven = await digestNow(masterA);
      const positionsA = logPositions(masterA);
      await env.close(masterA);
      await env.close(replicaB);

      // Switchover: B becomes the master of epoch 2, A follows it.
      const masterB = await env.master(b);
      assert.deepEqual(await digestNow(masterB), atSeven);
      assert.deepEqual(logPositions(masterB), { ...positionsA, firstSeq: masterB.log.firstSeq }, "B's log as a master is the log it applied");
      await masterB.log.beginEpoch(2, 8n);
      await commitHistory(masterB, 3);

      const replicaA = await env.replica(a);
      assert.deepEqual(replicaA.position, { seq: 7n, checksum: positionsA.lastChecksum, commitTimeMs: positionsA.lastCommitTimeMs, historyId: history });
      assert.deepEqual(await digestNow(replicaA), atSeven);
      assert.deepEqual([replicaA.log.firstSeq <= 8n, replicaA.log.lastSeq, replicaA.log.lastChecksum], [true, 7n, positionsA.lastChecksum]);
      assert.ok(replicaA.log.historyId.equals(history));
      await replicaA.log.adoptEpochs(masterB.log.epochs);
      await replicaA.apply(await entries(masterB, 8n, 10n), history);
      assert.deepEqual(await digestNow(replicaA), await digestNow(masterB));
      assert.deepEqual([replicaA.log.lastSeq, replicaA.log.lastChecksum], [10n, masterB.log.lastChecksum]);
      await env.close(replicaA);

      // And back: A is promoted again (epoch 3) and commits on from seq 10.
      masterA = await env.master(a);
      assert.deepEqual(logPositions(masterA), { ...logPositions(masterB), epoch: 2, firstSeq: masterA.log.firstSeq });
      assert.deepEqual(masterA.log.epochs, h('1@1 2@8'));
      await masterA.log.beginEpoch(3, 11n);
      await commitHistory(masterA, 2);
      assert.ok(chainsFrom((await masterA.log.entryAt(11n))!, masterB.log.lastChecksum));
      assert.deepEqual(await digestNow(masterA), { ...digestOf(dataAfter(12)), seq: 12n });
      await env.close(masterA);
      replicaB = await env.replica(a);
      assert.deepEqual([replicaB.appliedSeq, replicaB.log.lastSeq], [12n, 12n]);
      assert.deepEqual(await digestNow(replicaB), { ...digestOf(dataAfter(12)), seq: 12n });
      assert.deepEqual(replicaB.log.epochs, h('1@1 2@8 3@11'));
    });

    test('a replica whose data is in another generation (after a snapshot) opens as a master that writes and snapshots that generation', async (env) => {
      const source = await env.master();
      await commitHistory(source, 4);
      const node = await env.node();
      let replica = await env.replica(node);
      await replica.apply(await entries(source, 1n, 2n), source.log.historyId);
      await installSnapshot(replica, source);
      await commitHistory(source, 3);
      await installSnapshot(replica, source); // generation 2; generation 1 left to clear
      const gen = replica.dataGen;
      assert.equal(gen, 2);
      await env.close(replica);

      const master = await env.master(node);
      assert.deepEqual(await digestNow(master), { ...digestOf(dataAfter(7)), seq: 7n });
      assert.equal(master.log.lastSeq, 7n);
      await commitHistory(master, 5);
      assert.deepEqual(await digestNow(master), { ...digestOf(dataAfter(12)), seq: 12n });
      const snap = await master.snapshot();
      try {
        assert.equal(snap.seq, 12n);
        assert.deepEqual(digestOf(new Map((await readRows(snap, 100, MiB)).map(([k, v]) => [k.toString('hex'), v]))), digestOf(dataAfter(12)));
      } finally {
        await snap.close();
      }
      await env.close(master);

      replica = await env.replica(node);
      assert.equal(replica.dataGen, gen, 'the master switched no generation');
      assert.equal(replica.appliedSeq, 12n);
      assert.deepEqual(await digestNow(replica), { ...digestOf(dataAfter(12)), seq: 12n });
      // Its own snapshot installs go on from there.
      await commitHistory(source, 1);
      assert.equal(await installSnapshot(replica, source), gen);
      assert.deepEqual(await digestNow(replica), await digestNow(source));
    });

    test('slots stay with the directory in either role', async (env) => {
      const node = await env.node();
      const master = await env.master(node);
      await commitHistory(master, 3);
      const slots: SlotRecord[] = [{ followerId: 4, appliedSeq: 2n, lost: false }];
      await master.saveSlots(slots, true);
      await env.close(master);
      const replica = await env.replica(node);
      assert.deepEqual(await replica.loadSlots(), slots);
      await replica.dropSlot(4, true);
      await env.close(replica);
      assert.deepEqual(await (await env.master(node)).loadSlots(), []);
    });
  });
}
