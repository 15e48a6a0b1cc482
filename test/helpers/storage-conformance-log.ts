import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { ErrorCode } from '../../src/common/errors.js';
import type { SlotRecord } from '../../src/storage/interfaces.js';
import { chainsFrom, encodeEntry, entryChecksum, entrySeq, GENESIS_CHECKSUM } from '../../src/wire/entry-codec.js';
import type { StorageImpl } from './storage-conformance.js';
import { digestNow, getNow, logPositions, rejectsWith } from './storage-conformance-checks.js';
import { conformanceTest } from './storage-conformance-env.js';
import { commitHistory, dataAfter, del, digestOf, entries, MiB, put, request, T0 } from './storage-conformance-fixtures.js';

/** The master store's log: commits, reads, trims and waits. */
export function masterLogConformance(impl: StorageImpl): void {
  const test = conformanceTest(impl);

  describe('master log', () => {
    test('an empty log starts after seq 0 (checksum 0) and holds nothing', async (env) => {
      const master = await env.master();
      const { log } = master;
      assert.equal(log.historyId.length, 16);
      assert.equal(log.epoch, 1);
      assert.deepEqual([log.firstSeq, log.lastSeq, log.lastChecksum, log.lastCommitTimeMs], [1n, 0n, GENESIS_CHECKSUM, 0]);
      assert.equal(await log.checksumAt(0n), GENESIS_CHECKSUM);
      assert.equal(await log.checksumAt(1n), undefined);
      assert.equal(await log.entryAt(1n), undefined);
      assert.deepEqual(await log.read(1n, 10, MiB), []);
      assert.deepEqual(await digestNow(master), { ...digestOf(new Map()), seq: 0n });
      const other = await env.master();
      assert.ok(!other.log.historyId.equals(log.historyId), 'two new stores share a history id');
    });

    test('commitGroup gives consecutive seqs, chains checksums, and stores exactly the encoded entries', async (env) => {
      const master = await env.master();
      const w = [[put('a', '1')], [put('b', '2'), del('a')], [put('e', '')], [del('nothing')], [put('a', '3'), put('a', '4')]];
      assert.deepEqual(await master.commitGroup([request(w[0], w[1]), request(w[2])], T0 + 7, true), { firstSeq: 1n, lastSeq: 3n });
      assert.deepEqual(await master.commitGroup([request(w[3], w[4])], T0 + 9, false), { firstSeq: 4n, lastSeq: 5n });
      let prev = GENESIS_CHECKSUM;
      const got = await entries(master, 1n, 5n);
      for (let i = 0; i < 5; i++) {
        const expected = encodeEntry(BigInt(i + 1), i < 3 ? T0 + 7 : T0 + 9, w[i], prev);
        assert.ok(got[i].equals(expected), `entry ${i + 1} differs from its encoding`);
        assert.ok(chainsFrom(got[i], prev));
        prev = entryChecksum(expected);
        assert.equal(await master.log.checksumAt(BigInt(i + 1)), prev);
        assert.ok((await master.log.entryAt(BigInt(i + 1)))!.equals(expected));
      }
      assert.deepEqual([master.log.lastSeq, master.log.lastChecksum, master.log.lastCommitTimeMs], [5n, prev, T0 + 9]);
      assert.equal(await getNow(master, 'a'), '4');
      assert.equal(await getNow(master, 'b'), '2');
      assert.equal(await getNow(master, 'e'), '', 'an empty value is a value');
      assert.equal(await getNow(master, 'nothing'), undefined);
      assert.deepEqual(await digestNow(master), {
        ...digestOf(new Map([['a', '4'], ['b', '2'], ['e', '']].map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v)]))),
        seq: 5n,
      });
    });

    test('read takes up to maxEntries from fromSeq, at least one entry whatever maxBytes, and gives the caller its own buffers', async (env) => {
      const master = await env.master();
      await commitHistory(master, 9);
      const all = await entries(master, 1n, 9n);
      assert.deepEqual((await master.log.read(3n, 4, MiB)).map(entrySeq), [3n, 4n, 5n, 6n]);
      assert.deepEqual((await master.log.read(8n, 100, MiB)).map(entrySeq), [8n, 9n]);
      const two = all[2].length + all[3].length;
      assert.equal((await master.log.read(3n, 100, two)).length, 2, 'exactly two entries fit');
      assert.equal((await master.log.read(3n, 100, two - 1)).length, 1, 'the second entry does not fit');
      assert.equal((await master.log.read(3n, 100, 0)).length, 1, 'at least one entry');
      assert.deepEqual(await master.log.read(10n, 100, MiB), [], 'nothing past lastSeq');
      const mine = await master.log.read(1n, 1, MiB);
      mine[0].fill(0);
      assert.ok((await master.log.read(1n, 1, MiB))[0].equals(all[0]), 'a caller changing its buffer changed the log');
      assert.equal(await master.log.entryAt(10n), undefined);
      assert.equal(await master.log.checksumAt(10n), undefined);
    });

    test('readCached, when it answers, answers what read does', async (env) => {
      const master = await env.master();
      await commitHistory(master, 6);
      for (const from of [1n, 4n, 6n]) {
        const cached = master.log.readCached(from, 3, MiB)?.map((b) => Buffer.from(b));
        if (cached) assert.deepEqual(cached, await master.log.read(from, 3, MiB));
      }
      assert.equal(master.log.readCached(7n, 3, MiB), undefined);
    });

    test('trimTo trims exactly to the entry and keeps the base, so the chain stays verifiable', async (env) => {
      const node = await env.node();
      const master = await env.master(node);
      await commitHistory(master, 10);
      const checksums = await Promise.all([...Array(11).keys()].map((s) => master.log.checksumAt(BigInt(s))));
      assert.equal(await master.log.trimTo(4n, 1000n), 4n);
      assert.equal(master.log.firstSeq, 4n);
      await rejectsWith(master.log.read(3n, 10, MiB), ErrorCode.LOG_TRIMMED);
      await rejectsWith(master.log.read(1n, 10, MiB), ErrorCode.LOG_TRIMMED);
      assert.equal(await master.log.entryAt(3n), undefined);
      assert.equal(await master.log.checksumAt(3n), checksums[3], 'the base checksum is kept');
      assert.equal(await master.log.checksumAt(2n), undefined);
      const rest = await entries(master, 4n, 10n);
      assert.deepEqual(rest.map(entrySeq), [4n, 5n, 6n, 7n, 8n, 9n, 10n]);
      assert.ok(chainsFrom(rest[0], (await master.log.checksumAt(3n))!));
      assert.equal(await master.log.trimTo(2n, 1000n), 4n, 'nothing below firstSeq to trim');
      assert.deepEqual([master.log.lastSeq, master.log.lastChecksum], [10n, checksums[10]]);
      assert.deepEqual(await digestNow(master), { ...digestOf(dataAfter(10)), seq: 10n }, 'trimming the log touches no data');
      // A restart finds the trimmed log, and commits continue its chain.
      const before = logPositions(master);
      await env.close(master);
      const again = await env.master(node);
      assert.deepEqual(logPositions(again), before);
      assert.equal(await again.log.checksumAt(3n), checksums[3]);
      await rejectsWith(again.log.read(3n, 10, MiB), ErrorCode.LOG_TRIMMED);
      await commitHistory(again, 2);
      assert.ok(chainsFrom((await again.log.entryAt(11n))!, checksums[10]!));
      assert.deepEqual(await digestNow(again), { ...digestOf(dataAfter(12)), seq: 12n });
    });

    test('trimTo never trims lastSeq, moves by about maxEntries per call, and saves slots with the trim', async (env) => {
      const node = await env.node();
      const master = await env.master(node);
      await commitHistory(master, 12);
      const first = await master.log.trimTo(9n, 2n);
      assert.ok(first > 1n && first <= 9n, `trimTo(9, 2) moved firstSeq to ${first}`);
      assert.equal(master.log.firstSeq, first);
      let guard = 0;
      while (master.log.firstSeq < 9n && guard++ < 20) await master.log.trimTo(9n, 2n);
      assert.equal(master.log.firstSeq, 9n, 'repeated trims reach the target exactly');
      const slots: SlotRecord[] = [{ followerId: 3, appliedSeq: 11n, lost: false }];
      assert.equal(await master.log.trimTo(12n, 1000n, slots), 12n, 'trims up to, not including, lastSeq');
      assert.deepEqual(await master.loadSlots(), slots);
      try {
        await master.log.trimTo(20n, 1000n);
      } catch {
        // Refusing a trim past lastSeq is as good as trimming only up to it.
      }
      assert.equal(master.log.lastSeq, 12n);
      assert.ok(master.log.firstSeq <= 12n, 'lastSeq was trimmed');
      assert.equal(entrySeq((await master.log.entryAt(12n))!), 12n);
      assert.deepEqual((await master.log.read(12n, 10, MiB)).map(entrySeq), [12n]);
      const positions = logPositions(master);
      await env.close(master);
      const again = await env.master(node);
      assert.deepEqual(logPositions(again), positions);
      assert.deepEqual(await again.loadSlots(), slots);
    });

    test('bytesFrom is monotone: less from a later seq, nothing but trimmed bytes lost by trimming', async (env) => {
      const master = await env.master();
      await commitHistory(master, 8);
      const sizes: number[] = [];
      for (let s = 1n; s <= 9n; s++) sizes.push(await master.log.bytesFrom(s));
      for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i] <= sizes[i - 1], `bytesFrom(${i + 1}) > bytesFrom(${i})`);
      assert.ok(sizes[8] >= 0);
      await master.log.trimTo(5n, 1000n);
      assert.ok((await master.log.bytesFrom(1n)) <= sizes[0]);
      assert.ok((await master.log.bytesFrom(6n)) <= (await master.log.bytesFrom(5n)));
    });

    test('waitForAppend resolves on a commit, on wake(), or after its timeout', async (env) => {
      const master = await env.master();
      const waited = master.log.waitForAppend(60_000);
      await commitHistory(master, 1);
      await waited;
      const woken = master.log.waitForAppend(60_000);
      master.log.wake();
      await woken;
      await master.log.waitForAppend(5);
    });
  });
}
