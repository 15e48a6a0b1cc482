import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { ErrorCode } from '../../src/common/errors.js';
import { INITIAL_HISTORY, type EpochHistory } from '../../src/storage/epoch-history.js';
import { chainsFrom } from '../../src/wire/entry-codec.js';
import type { StorageImpl } from './storage-conformance.js';
import { digestNow, installSnapshot, rejectsWith } from './storage-conformance-checks.js';
import { conformanceTest } from './storage-conformance-env.js';
import { commitHistory, dataAfter, digestOf, entries } from './storage-conformance-fixtures.js';

/** `h('1@1 2@101')`: a history from its short form. */
export const h = (s: string): EpochHistory =>
  s.split(' ').map((p) => {
    const [epoch, firstSeq] = p.split('@');
    return { epoch: Number(epoch), firstSeq: BigInt(firstSeq) };
  });

/** The log's epoch history (EpochLog): begun by a master, adopted by a follower, durable either way. */
export function epochConformance(impl: StorageImpl): void {
  const test = conformanceTest(impl);

  describe('epoch history', () => {
    test("a new log, a master's or a replica's, is at epoch 1 from seq 1", async (env) => {
      const master = await env.master();
      assert.deepEqual(master.log.epochs, INITIAL_HISTORY);
      assert.equal(master.log.epoch, 1);
      const replica = await env.replica();
      assert.deepEqual(replica.log.epochs, INITIAL_HISTORY);
      assert.equal(replica.log.epoch, 1);
    });

    test('beginEpoch starts an epoch at the next seq, durably; commits go on; a restart keeps it', async (env) => {
      const node = await env.node();
      const master = await env.master(node);
      await commitHistory(master, 5);
      await master.log.beginEpoch(2, 6n);
      assert.deepEqual(master.log.epochs, h('1@1 2@6'));
      assert.equal(master.log.epoch, 2);
      await commitHistory(master, 3);
      await master.log.beginEpoch(5, 9n);
      await env.close(master);
      const again = await env.master(node);
      assert.deepEqual(again.log.epochs, h('1@1 2@6 5@9'));
      assert.equal(again.log.epoch, 5);
      const checksum8 = await again.log.checksumAt(8n);
      await commitHistory(again, 2);
      assert.ok(chainsFrom((await again.log.entryAt(9n))!, checksum8!), 'the chain goes on across epochs');
      assert.deepEqual(await digestNow(again), { ...digestOf(dataAfter(10)), seq: 10n });
    });

    test("beginEpoch refuses an epoch not above the log's, and any seq but the next", async (env) => {
      const node = await env.node();
      const master = await env.master(node);
      await commitHistory(master, 4);
      await master.log.beginEpoch(3, 5n);
      for (const [epoch, seq] of [[3, 5n], [2, 5n], [4, 6n], [4, 4n], [4, 1n]] as const) {
        await rejectsWith(master.log.beginEpoch(epoch, seq), ErrorCode.INVALID_ARGUMENT);
      }
      assert.deepEqual(master.log.epochs, h('1@1 3@5'));
      await env.close(master);
      assert.deepEqual((await env.master(node)).log.epochs, h('1@1 3@5'));
    });

    test("adoptEpochs replaces the history durably; refuses an older epoch (STALE_EPOCH) or an invalid history (INVALID_ARGUMENT)", async (env) => {
      const node = await env.node();
      const replica = await env.replica(node);
      await replica.log.adoptEpochs(h('1@1 2@4 3@4'));
      assert.deepEqual(replica.log.epochs, h('1@1 2@4 3@4'));
      assert.equal(replica.log.epoch, 3);
      await replica.log.adoptEpochs(h('1@1 2@4 3@4')); // the same again: nothing changes
      await rejectsWith(replica.log.adoptEpochs(h('1@1 2@4')), ErrorCode.STALE_EPOCH);
      for (const bad of [[], h('1@2'), h('1@1 3@9 3@12'), h('1@1 3@9 4@5')]) await rejectsWith(replica.log.adoptEpochs(bad), ErrorCode.INVALID_ARGUMENT);
      assert.deepEqual(replica.log.epochs, h('1@1 2@4 3@4'));
      await env.close(replica);
      const again = await env.replica(node);
      assert.deepEqual(again.log.epochs, h('1@1 2@4 3@4'));
      // The same newest epoch with other boundaries is an upstream's history too.
      await again.log.adoptEpochs(h('1@1 3@7'));
      assert.deepEqual(again.log.epochs, h('1@1 3@7'));
    });

    test("applies and snapshot switches keep a replica's history; beginEpoch after them drops adopted epochs past the promotion point", async (env) => {
      const master = await env.master();
      await commitHistory(master, 6);
      const node = await env.node();
      const replica = await env.replica(node);
      await replica.log.adoptEpochs(h('1@1 2@3 4@200'));
      await replica.apply(await entries(master, 1n, 4n), master.log.historyId);
      await commitHistory(master, 4);
      await installSnapshot(replica, master);
      await commitHistory(master, 2);
      await replica.apply(await entries(master, 11n, 12n), master.log.historyId);
      assert.deepEqual(replica.log.epochs, h('1@1 2@3 4@200'));
      await env.close(replica);
      // Promoted at its applied seq: epoch 5 begins at the next seq, epoch 4 never reached it.
      const promoted = await env.master(node);
      assert.deepEqual(promoted.log.epochs, h('1@1 2@3 4@200'));
      assert.equal(promoted.log.lastSeq, 12n);
      await promoted.log.beginEpoch(5, 13n);
      assert.deepEqual(promoted.log.epochs, h('1@1 2@3 5@13'));
    });
  });
}
