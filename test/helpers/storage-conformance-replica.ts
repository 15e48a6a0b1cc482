import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { ErrorCode } from '../../src/common/errors.js';
import type { MasterStore } from '../../src/storage/interfaces.js';
import { encodeEntry, entryCommitTimeMs, GENESIS_CHECKSUM } from '../../src/wire/entry-codec.js';
import type { StorageImpl } from './storage-conformance.js';
import { digestNow, getNow, installSnapshot, positionOf, readRows, rejectsWith, replicaState, writeSnapshot } from './storage-conformance-checks.js';
import { conformanceTest, type Env } from './storage-conformance-env.js';
import { commitHistory, dataAfter, digestOf, entries, MiB, put, request, T0 } from './storage-conformance-fixtures.js';

/** The replica store: applying, staging, snapshot installs, restarts and failed writes. */
export function replicaStoreConformance(impl: StorageImpl): void {
  const test = conformanceTest(impl);

  describe('replica store', () => {
    /** A master with `count` seqs of the standard history, and its entries. */
    async function source(env: Env, count: number): Promise<{ master: MasterStore; log: Buffer[]; historyId: Buffer }> {
      const master = await env.master();
      await commitHistory(master, count);
      return { master, log: await entries(master, 1n, BigInt(count)), historyId: master.log.historyId };
    }
    /** Entries from..to (seqs, inclusive) of a log read from 1. */
    const seqs = (log: Buffer[], from: number, to: number) => log.slice(from - 1, to);

    test('a new replica is at seq 0 of no history, with no data', async (env) => {
      const replica = await env.replica();
      assert.deepEqual(replica.position, { seq: 0n, checksum: GENESIS_CHECKSUM, commitTimeMs: 0, historyId: replica.historyId });
      assert.deepEqual([replica.appliedSeq, replica.appliedChecksum, replica.appliedCommitTimeMs], [0n, 0, 0]);
      assert.equal(replica.progress.position, 0n);
      assert.deepEqual(await digestNow(replica), { ...digestOf(new Map()), seq: 0n });
    });

    test("apply moves the position and the data with it, to the master's digest", async (env) => {
      const { master, log, historyId } = await source(env, 9);
      const replica = await env.replica();
      const reached = replica.progress.wait(4n, 60_000);
      await replica.apply(seqs(log, 1, 4), historyId);
      assert.equal(await reached, true);
      assert.deepEqual(replica.position, { seq: 4n, checksum: await master.log.checksumAt(4n), commitTimeMs: entryCommitTimeMs(log[3]), historyId });
      assert.deepEqual(await digestNow(replica), { ...digestOf(dataAfter(4)), seq: 4n });
      assert.equal(await getNow(replica, 'k4'), 'v4');
      await replica.apply(seqs(log, 5, 9), historyId);
      await replica.apply([], historyId);
      assert.equal(replica.appliedChecksum, master.log.lastChecksum);
      assert.deepEqual(await digestNow(replica), await digestNow(master));
    });

    test('refuses entries that skip or repeat a seq with SEQ_GAP, writing nothing', async (env) => {
      const { log, historyId } = await source(env, 6);
      const node = await env.node();
      const replica = await env.replica(node);
      await rejectsWith(replica.apply(seqs(log, 2, 3), historyId), ErrorCode.SEQ_GAP);
      await replica.apply(seqs(log, 1, 3), historyId);
      const state = await replicaState(replica);
      await rejectsWith(replica.apply(seqs(log, 5, 6), historyId), ErrorCode.SEQ_GAP);
      await rejectsWith(replica.apply(seqs(log, 3, 4), historyId), ErrorCode.SEQ_GAP);
      await rejectsWith(replica.apply([log[3], log[5]], historyId), ErrorCode.SEQ_GAP);
      assert.deepEqual(await replicaState(replica), state, 'a refused batch wrote something');
      await env.close(replica);
      assert.deepEqual(await replicaState(await env.replica(node)), state, 'a refused batch reached the disk');
    });

    test('refuses an entry that does not chain from the applied checksum with CORRUPT_ENTRY, writing nothing', async (env) => {
      const { log, historyId } = await source(env, 5);
      const replica = await env.replica();
      await replica.apply(seqs(log, 1, 2), historyId);
      const state = await replicaState(replica);
      const flipped = Buffer.from(log[3 - 1]);
      flipped[flipped.length - 6] ^= 0x01; // a key byte: still well formed
      await rejectsWith(replica.apply([flipped], historyId), ErrorCode.CORRUPT_ENTRY);
      // A good entry followed by a bad one: the batch is refused whole.
      const flipped4 = Buffer.from(log[4 - 1]);
      flipped4[flipped4.length - 6] ^= 0x01;
      await rejectsWith(replica.apply([log[3 - 1], flipped4], historyId), ErrorCode.CORRUPT_ENTRY);
      const resealed = encodeEntry(3n, T0 + 3, [put('k3', 'forged')], 12345);
      await rejectsWith(replica.apply([resealed], historyId), ErrorCode.CORRUPT_ENTRY);
      // Same seqs and history, but another master's entries: they chain from another checksum.
      const other = await env.master();
      await other.commitGroup([request([put('x', '1')], [put('y', '2')], [put('z', '3')])], T0, true);
      await rejectsWith(replica.apply(await other.log.read(3n, 1, MiB), historyId), ErrorCode.CORRUPT_ENTRY);
      assert.deepEqual(await replicaState(replica), state);
      await replica.apply(seqs(log, 3, 5), historyId);
      assert.deepEqual(await digestNow(replica), { ...digestOf(dataAfter(5)), seq: 5n });
    });

    test('refuses malformed entries with CORRUPT_ENTRY', async (env) => {
      const { log, historyId } = await source(env, 2);
      const replica = await env.replica();
      await replica.apply(seqs(log, 1, 1), historyId);
      const state = await replicaState(replica);
      const version = Buffer.from(log[1]);
      version[0] = 9;
      for (const bad of [Buffer.alloc(3), version, log[1].subarray(0, log[1].length - 1)]) {
        await rejectsWith(replica.apply([bad], historyId), ErrorCode.CORRUPT_ENTRY);
      }
      assert.deepEqual(await replicaState(replica), state);
    });

    test('refuses entries of another history with HISTORY_MISMATCH once it holds entries', async (env) => {
      const { log, historyId } = await source(env, 4);
      const other = await source(env, 4);
      const replica = await env.replica();
      await replica.apply(seqs(other.log, 1, 2), other.historyId); // a new replica takes any history
      assert.ok(replica.historyId.equals(other.historyId));
      const state = await replicaState(replica);
      await rejectsWith(replica.apply(seqs(log, 3, 4), historyId), ErrorCode.HISTORY_MISMATCH);
      await rejectsWith(replica.stage(seqs(log, 3, 4), historyId), ErrorCode.HISTORY_MISMATCH);
      assert.deepEqual(await replicaState(replica), state);
    });

    test('stage writes nothing; staged batches commit in order; discard drops one', async (env) => {
      const { master, log, historyId } = await source(env, 8);
      const replica = await env.replica();
      const a = await replica.stage(seqs(log, 1, 2), historyId);
      const b = await replica.stage(seqs(log, 3, 5), historyId, a.to);
      assert.deepEqual([a.from.seq, a.to.seq, a.count, b.from.seq, b.to.seq, b.count], [0n, 2n, 2, 2n, 5n, 3]);
      assert.equal(b.to.checksum, await master.log.checksumAt(5n));
      assert.equal(a.gen, replica.dataGen);
      assert.deepEqual(await digestNow(replica), { ...digestOf(new Map()), seq: 0n }, 'staging wrote something');
      assert.equal(replica.appliedSeq, 0n);
      await rejectsWith(replica.commit(b), ErrorCode.INTERNAL); // out of order: refused, dropped
      assert.equal(replica.appliedSeq, 0n);
      await replica.commit(a);
      assert.equal(replica.appliedSeq, 2n);
      const b2 = await replica.stage(seqs(log, 3, 5), historyId);
      await replica.discard(b2);
      assert.deepEqual(await digestNow(replica), { ...digestOf(dataAfter(2)), seq: 2n }, 'a discarded batch was written');
      await rejectsWith(replica.stage(seqs(log, 4, 5), historyId), ErrorCode.SEQ_GAP);
      await rejectsWith(replica.stage(seqs(log, 3, 5), historyId, b.to), ErrorCode.SEQ_GAP);
      const c = await replica.stage(seqs(log, 3, 5), historyId);
      const d = await replica.stage(seqs(log, 6, 8), historyId, c.to);
      await replica.commit(c);
      await replica.commit(d);
      assert.deepEqual(await digestNow(replica), await digestNow(master));
    });

    test('a snapshot installs into the next generation: old data until the switch, new after, the old generation clearable', async (env) => {
      const { master, log, historyId } = await source(env, 6);
      const node = await env.node();
      const replica = await env.replica(node);
      await replica.apply(seqs(log, 1, 2), historyId);
      await commitHistory(master, 6);
      const atSnapshot = await digestNow(master);
      const snap = await master.snapshot();
      await commitHistory(master, 4); // seqs after the snapshot
      const oldGen = replica.dataGen;
      const gen = (oldGen + 1) >>> 0;
      const before = await replicaState(replica);
      const oldView = replica.view();
      await replica.clearGeneration(gen);
      await writeSnapshot(replica, snap, gen);
      assert.deepEqual(await replicaState(replica), before, 'pairs of the next generation are read before the switch');
      const reached = replica.progress.wait(12n, 60_000);
      assert.equal(await replica.switchToSnapshot(positionOf(master, snap, gen)), oldGen);
      await snap.close();
      assert.equal(await reached, true);
      assert.equal(replica.dataGen, gen);
      assert.deepEqual(replica.position, { seq: 12n, checksum: await master.log.checksumAt(12n), commitTimeMs: entryCommitTimeMs((await master.log.entryAt(12n))!), historyId });
      assert.deepEqual(await digestNow(replica), atSnapshot);
      assert.deepEqual(await oldView.digest(), before.digest, 'a view from before the switch changed');
      assert.equal(await oldView.seq(), 2n);
      await oldView.close();
      await assert.rejects(replica.clearGeneration(gen), 'the active generation was cleared');
      await replica.clearGeneration(oldGen);
      assert.deepEqual(await digestNow(replica), atSnapshot);
      // The log continues from the snapshot's position, to the master's state.
      await replica.apply(await entries(master, 13n, 16n), historyId);
      assert.deepEqual(await digestNow(replica), await digestNow(master));
      const state = await replicaState(replica);
      await env.close(replica);
      assert.deepEqual(await replicaState(await env.replica(node)), state);
    });

    test('an interrupted install is never read, and a later install holds exactly its own snapshot', async (env) => {
      const { master, log, historyId } = await source(env, 8);
      const node = await env.node();
      const replica = await env.replica(node);
      await replica.apply(seqs(log, 1, 3), historyId);
      const before = await replicaState(replica);
      const gen = (replica.dataGen + 1) >>> 0;
      // Pairs that are in no later snapshot, left in the next generation by an install that stops.
      await replica.writePairs(replica.stagePairs(gen, [{ key: Buffer.from('leftover'), value: Buffer.from('x') }]), 'store snapshot pairs');
      const dropped = replica.stagePairs(gen, [{ key: Buffer.from('never'), value: Buffer.from('y') }]);
      await replica.discardPairs(dropped);
      await env.close(replica);
      const again = await env.replica(node);
      assert.deepEqual(await replicaState(again), before);
      await installSnapshot(again, master);
      assert.equal(await getNow(again, 'leftover'), undefined);
      assert.equal(await getNow(again, 'never'), undefined);
      assert.deepEqual(await digestNow(again), await digestNow(master));
    });

    test('a snapshot of the same history can move a replica past its position; the log then continues', async (env) => {
      const { master, log, historyId } = await source(env, 4);
      const replica = await env.replica();
      await replica.apply(seqs(log, 1, 4), historyId);
      await commitHistory(master, 3);
      assert.equal(await installSnapshot(replica, master), 0);
      assert.equal(replica.appliedSeq, 7n);
      // A second install, in chunks of one pair, goes into the generation after and replaces the data.
      await commitHistory(master, 2);
      const replaced = await installSnapshot(replica, master, 1);
      assert.equal(replaced, 1);
      await replica.clearGeneration(replaced);
      assert.deepEqual(await digestNow(replica), await digestNow(master));
      await commitHistory(master, 2);
      await replica.apply(await entries(master, 10n, 11n), historyId);
      assert.deepEqual(await digestNow(replica), await digestNow(master));
    });

    test('position, generation and data survive a restart, and applying continues', async (env) => {
      const { master, log, historyId } = await source(env, 10);
      const node = await env.node();
      const replica = await env.replica(node);
      await replica.apply(seqs(log, 1, 6), historyId);
      const state = await replicaState(replica);
      await env.close(replica);
      const again = await env.replica(node);
      assert.deepEqual(await replicaState(again), state);
      assert.ok(again.historyId.equals(historyId));
      assert.equal(again.progress.position, 6n);
      await again.apply(seqs(log, 7, 10), historyId);
      assert.deepEqual(await digestNow(again), await digestNow(master));
    });

    test('a failed apply leaves the position; commit then refuses until ensureWritable', async (env, t) => {
      const node = await env.node();
      if (!node.failNextWrite) return t.skip('this implementation has no fault seam');
      const { master, log, historyId } = await source(env, 9);
      const replica = await env.replica(node);
      await replica.apply(seqs(log, 1, 3), historyId);
      const state = await replicaState(replica);
      node.failNextWrite();
      await rejectsWith(replica.apply(seqs(log, 4, 6), historyId), ErrorCode.STORE_FAILED);
      assert.deepEqual(await replicaState(replica), state);
      const staged = await replica.stage(seqs(log, 4, 6), historyId);
      await rejectsWith(replica.commit(staged), ErrorCode.STORE_FAILED);
      assert.deepEqual(await replicaState(replica), state);
      await replica.ensureWritable();
      assert.deepEqual(await replicaState(replica), state);
      const again = await replica.stage(seqs(log, 4, 6), historyId);
      await replica.commit(again);
      assert.equal(replica.appliedSeq, 6n);
      node.failNextWrite();
      await rejectsWith(replica.apply(seqs(log, 7, 9), historyId), ErrorCode.STORE_FAILED);
      await replica.apply(seqs(log, 7, 9), historyId); // apply makes the store writable itself
      assert.deepEqual(await digestNow(replica), await digestNow(master));
    });

    test('a failed pairs write refuses further pairs until ensureWritable; the install then restarts cleanly', async (env, t) => {
      const node = await env.node();
      if (!node.failNextWrite) return t.skip('this implementation has no fault seam');
      const { master, log, historyId } = await source(env, 8);
      const replica = await env.replica(node);
      await replica.apply(seqs(log, 1, 2), historyId);
      const state = await replicaState(replica);
      const gen = (replica.dataGen + 1) >>> 0;
      node.failNextWrite();
      await rejectsWith(replica.writePairs(replica.stagePairs(gen, [{ key: Buffer.from('a'), value: Buffer.from('1') }]), 'store pairs'), ErrorCode.STORE_FAILED);
      await rejectsWith(replica.writePairs(replica.stagePairs(gen, [{ key: Buffer.from('b'), value: Buffer.from('2') }]), 'store pairs'), ErrorCode.STORE_FAILED);
      await replica.ensureWritable();
      assert.deepEqual(await replicaState(replica), state);
      await installSnapshot(replica, master);
      assert.deepEqual(await digestNow(replica), await digestNow(master));
    });

    test('a failed switch leaves the old data and position', async (env, t) => {
      const node = await env.node();
      if (!node.failNextWrite) return t.skip('this implementation has no fault seam');
      const { master, log, historyId } = await source(env, 6);
      const replica = await env.replica(node);
      await replica.apply(seqs(log, 1, 2), historyId);
      const state = await replicaState(replica);
      const gen = (replica.dataGen + 1) >>> 0;
      const snap = await master.snapshot();
      const pairs = (await readRows(snap, 1000, MiB)).map(([key, value]) => ({ key, value }));
      await replica.clearGeneration(gen);
      await replica.writePairs(replica.stagePairs(gen, pairs), 'store pairs');
      node.failNextWrite();
      await rejectsWith(replica.switchToSnapshot(positionOf(master, snap, gen)), ErrorCode.STORE_FAILED);
      await replica.ensureWritable();
      assert.deepEqual(await replicaState(replica), state);
      await env.close(replica);
      const again = await env.replica(node);
      assert.deepEqual(await replicaState(again), state);
      await snap.close();
    });
  });
}
