import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { chainsFrom, entryChecksum, entryCommitTimeMs, entrySeq, GENESIS_CHECKSUM, MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { prepareWrites } from '../../src/wire/prepared-writes.js';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { framedSize } from '../../src/wire/protobuf-wire.js';
import { dataKey, metaKey, MetaName, u64 } from '../../src/storage/layout.js';
import { openStore } from '../../src/storage/level-store.js';
import { logDir, openMasterStore, type LevelMasterStore } from '../../src/storage/level-master-store.js';
import { firstSeqOfName, HEADER_BYTES, INDEX_STRIDE } from '../../src/storage/segment-format.js';
import type { ReplicationLog } from '../../src/storage/interfaces.js';
import { openStoreForReading } from '../../src/storage/read-only-store.js';
import { tempDir } from '../helpers/processes.js';

const put = (k: string, v: string): Mutation[] => [{ kind: MutationKind.PUT, key: Buffer.from(k), value: Buffer.from(v) }];
const del = (k: string): Mutation[] => [{ kind: MutationKind.DELETE, key: Buffer.from(k) }];

/** Commits one group of one request holding the given writes, at commit time t. */
async function commit(store: LevelMasterStore, writes: Mutation[][], t = Date.now(), sync = false) {
  const prepared = prepareWrites(writes, 0);
  try {
    return await store.commitGroup([prepared], t, sync);
  } finally {
    prepared.release();
  }
}

/** Commits n groups of `size` writes each (keys g<i>-<j>): n log chunks of `size` entries. */
async function fill(store: LevelMasterStore, n: number, size: number): Promise<void> {
  for (let i = 0; i < n; i++) await commit(store, Array.from({ length: size }, (_, j) => put(`g${i}-${j}`, `v${i}-${j}`)));
}

async function openNew(opts: { maxSegmentBytes?: number } = {}): Promise<{ dir: string; store: LevelMasterStore }> {
  const dir = path.join(tempDir(), 'm');
  return { dir, store: await openMasterStore(dir, { create: true, ...opts }) };
}

/** Segments of about 8 KiB: the tests' logs span several. */
const SMALL_SEGMENTS = 8 * 1024;

/** The segment files of a master's log, oldest first: first seq, last seq (from the next one's name) and size. */
function segmentsOf(dir: string): { name: string; first: bigint; last: bigint | 'newest'; bytes: number }[] {
  const names = fs.readdirSync(logDir(dir)).filter((n) => firstSeqOfName(n) !== undefined).sort();
  return names.map((name, i) => ({
    name,
    first: firstSeqOfName(name)!,
    last: i + 1 < names.length ? firstSeqOfName(names[i + 1])! - 1n : 'newest',
    bytes: fs.statSync(path.join(logDir(dir), name)).size,
  }));
}

/** Reads from..to through the log and checks every entry is there, in order, chained from the base's checksum. */
async function assertChains(log: ReplicationLog, from: bigint, to: bigint): Promise<void> {
  const got = await log.read(from, Number(to - from) + 1, Infinity);
  assert.deepEqual(got.map(entrySeq), Array.from({ length: Number(to - from) + 1 }, (_, i) => from + BigInt(i)));
  let prev = await log.checksumAt(from - 1n);
  assert.notEqual(prev, undefined, `the checksum of seq ${from - 1n}, the base`);
  for (const e of got) {
    assert.ok(chainsFrom(e, prev!), `seq ${entrySeq(e)} chains`);
    prev = entryChecksum(e);
  }
  assert.equal(prev, log.lastChecksum);
}

describe('LevelMasterStore', () => {
  it('a new store has a history, an empty log at seq 0, and survives reopening with its positions', async () => {
    const { dir, store } = await openNew();
    const { log } = store;
    assert.equal(log.historyId.length, 16);
    assert.equal(log.epoch, 1);
    assert.equal(log.firstSeq, 1n);
    assert.equal(log.lastSeq, 0n);
    assert.equal(log.lastChecksum, GENESIS_CHECKSUM);
    assert.equal(await log.checksumAt(0n), GENESIS_CHECKSUM);
    const r = await commit(store, [put('a', '1'), put('b', '2')], 1_000);
    assert.deepEqual(r, { firstSeq: 1n, lastSeq: 2n });
    const { historyId, lastChecksum } = log;
    await store.close();
    const again = await openMasterStore(dir, { create: false });
    assert.ok(again.log.historyId.equals(historyId));
    assert.equal(again.log.lastSeq, 2n);
    assert.equal(again.log.lastChecksum, lastChecksum);
    assert.equal(again.log.lastCommitTimeMs, 1_000);
    await again.close();
  });

  it('commitGroup writes chained entries and their data in one write; views see one state', async () => {
    const { store } = await openNew();
    await commit(store, [put('a', '1'), put('b', '2')], 1_000);
    const view = store.view(); // before the next group: must not see it
    const r = await commit(store, [del('a'), put('c', '3')], 2_000);
    assert.deepEqual(r, { firstSeq: 3n, lastSeq: 4n });
    assert.equal(store.log.lastCommitTimeMs, 2_000);
    const entries = await store.log.read(1n, 100, Infinity);
    assert.deepEqual(entries.map(entrySeq), [1n, 2n, 3n, 4n]);
    let prev = GENESIS_CHECKSUM;
    for (const e of entries) {
      assert.ok(chainsFrom(e, prev));
      prev = entryChecksum(e);
    }
    assert.equal(store.log.lastChecksum, prev);
    assert.equal(entryCommitTimeMs(entries[3]), 2_000);
    // The old view: seq 2, with a and without c.
    assert.equal(await view.seq(), 2n);
    assert.equal((await view.get(Buffer.from('a')))?.toString(), '1');
    assert.equal(await view.get(Buffer.from('c')), undefined);
    const oldDigest = await view.digest();
    assert.equal(oldDigest.keys, 2n);
    await view.close();
    const now = store.view();
    assert.equal(await now.seq(), 4n);
    assert.equal(await now.get(Buffer.from('a')), undefined);
    assert.equal((await now.get(Buffer.from('c')))?.toString(), '3');
    const newDigest = await now.digest();
    assert.equal(newDigest.keys, 2n);
    assert.notEqual(newDigest.digest, oldDigest.digest);
    await now.close();
    await store.close();
  });

  it('snapshot(): data and position from one instant, rows in key order with the layout prefix', async () => {
    const { store } = await openNew();
    const empty = await store.snapshot();
    assert.equal(empty.seq, 0n);
    assert.equal(empty.checksum, 0);
    assert.equal(empty.commitTimeMs, 0);
    await empty.close();
    await commit(store, [put('b', '2'), put('a', '1')], 1_000);
    const snap = await store.snapshot();
    await commit(store, [put('c', '3'), del('a')], 2_000); // after the snapshot: not in it
    assert.equal(snap.seq, 2n);
    assert.equal(snap.checksum, entryChecksum((await store.log.entryAt(2n))!));
    assert.equal(snap.commitTimeMs, 1_000);
    assert.ok(snap.approxBytes >= 0);
    const rows = snap.rows(1, 1024);
    const pairs: [string, string][] = [];
    for (let batch = await rows.next(); batch.length > 0; batch = await rows.next()) {
      for (const [k, v] of batch) pairs.push([Buffer.from(k as string | Buffer).subarray(snap.keyOffset).toString(), v.toString()]);
    }
    await rows.close();
    await snap.close();
    assert.deepEqual(pairs, [
      ['a', '1'],
      ['b', '2'],
    ]);
    await store.close();
  });

  it('checksumAt knows the entries in the log and the base just before it, nothing else', async () => {
    const { store } = await openNew();
    await fill(store, 5, 10); // seqs 1..50, chunks of 10
    const { log } = store;
    const checksums = new Map((await log.read(1n, 100, Infinity)).map((e) => [entrySeq(e), entryChecksum(e)]));
    assert.equal(await log.checksumAt(0n), GENESIS_CHECKSUM);
    assert.equal(await log.checksumAt(17n), checksums.get(17n));
    assert.equal(await log.checksumAt(50n), checksums.get(50n));
    assert.equal(await log.checksumAt(51n), undefined);
    assert.equal(await log.trimTo(25n, 1_000n), 25n);
    assert.equal(await log.checksumAt(24n), checksums.get(24n), 'the base');
    assert.equal(await log.checksumAt(23n), undefined, 'trimmed');
    assert.equal(await log.checksumAt(0n), undefined, 'seq 0 is no longer the base');
    assert.equal(await log.checksumAt(25n), checksums.get(25n));
    await store.close();
  });

  it('trimTo is exact to the entry whatever maxEntries, keeps the base\'s checksum, deletes only whole segments below the cut, and never trims lastSeq', async () => {
    const { dir, store } = await openNew({ maxSegmentBytes: SMALL_SEGMENTS });
    await fill(store, 10, 100); // seqs 1..1000, groups of 100
    const { log } = store;
    const checksums = new Map((await log.read(1n, 1_000, Infinity)).map((e) => [entrySeq(e), entryChecksum(e)]));
    const before = segmentsOf(dir);
    assert.ok(before.length >= 4, `${before.length} segments`);
    // maxEntries no longer bounds a step: deleting a segment file costs the same whatever it holds.
    assert.equal(await log.trimTo(650n, 250n), 650n, 'exact to the entry, in one call');
    assert.equal(log.firstSeq, 650n);
    assert.equal(await log.trimTo(650n, 1_000n), 650n, 'nothing more to trim');
    assert.deepEqual(segmentsOf(dir), before.filter((s) => s.last === 'newest' || s.last >= 650n), 'exactly the segments wholly below seq 650 are deleted');
    assert.ok(segmentsOf(dir)[0].first < 650n, 'the segment holding seq 650 keeps the entries before it on disk');
    // Trimmed entries are gone, also those still in the in-memory tail and in the kept segment.
    assert.equal(await log.entryAt(649n), undefined);
    assert.equal(entrySeq((await log.entryAt(650n))!), 650n);
    await assert.rejects(log.read(649n, 10, Infinity), (e) => isReplicatorError(e, ErrorCode.LOG_TRIMMED));
    assert.deepEqual((await log.read(650n, 2, Infinity)).map(entrySeq), [650n, 651n]);
    // The base: the checksum of the last trimmed entry is known, nothing before it.
    assert.equal(await log.checksumAt(649n), checksums.get(649n));
    assert.equal(await log.checksumAt(648n), undefined);
    await assertChains(log, 650n, 1_000n);
    // A target past the newest entry trims up to it, keeping it (and the active segment).
    assert.equal(await log.trimTo(5_000n, 10_000n), 1_000n);
    assert.equal(log.lastSeq, 1_000n);
    assert.equal(log.firstSeq, 1_000n);
    assert.equal(await log.checksumAt(999n), checksums.get(999n));
    assert.deepEqual(segmentsOf(dir), [before.at(-1)], 'only the active segment is left');
    await assertChains(log, 1_000n, 1_000n);
    await store.close();
    // A restart keeps the trim point, although the kept segment still holds older entries.
    const again = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL_SEGMENTS });
    assert.equal(again.log.firstSeq, 1_000n);
    assert.equal(again.log.lastSeq, 1_000n);
    assert.equal(await again.log.checksumAt(999n), checksums.get(999n));
    await assert.rejects(again.log.read(999n, 1, Infinity), (e) => isReplicatorError(e, ErrorCode.LOG_TRIMMED));
    await assertChains(again.log, 1_000n, 1_000n);
    await again.close();
  });

  it('slots: saved and loaded, written with a trim, and written even when there is nothing to trim', async () => {
    const { dir, store } = await openNew();
    assert.deepEqual(await store.loadSlots(), []);
    await store.saveSlots([], true); // nothing to write
    await store.saveSlots(
      [
        { followerId: 2, appliedSeq: 7n, lost: false },
        { followerId: 10, appliedSeq: 3n, lost: true },
      ],
      true,
    );
    const byId = async () => new Map((await store.loadSlots()).map((s) => [s.followerId, s]));
    assert.deepEqual(await byId(), new Map([
      [2, { followerId: 2, appliedSeq: 7n, lost: false }],
      [10, { followerId: 10, appliedSeq: 3n, lost: true }],
    ]));
    await fill(store, 3, 10);
    assert.equal(await store.log.trimTo(15n, 1_000n, [{ followerId: 2, appliedSeq: 14n, lost: false }]), 15n);
    assert.deepEqual((await byId()).get(2), { followerId: 2, appliedSeq: 14n, lost: false });
    assert.equal(await store.log.trimTo(15n, 1_000n, [{ followerId: 2, appliedSeq: 20n, lost: true }]), 15n, 'nothing to trim');
    assert.deepEqual((await byId()).get(2), { followerId: 2, appliedSeq: 20n, lost: true });
    // A record that does not parse is skipped.
    await store.db.put(metaKey(`${MetaName.SLOT_PREFIX}x`), u64(1n));
    assert.deepEqual([...(await byId()).keys()].sort((a, b) => a - b), [2, 10]);
    await store.close();
    const again = await openMasterStore(dir, { create: false });
    assert.equal((await again.loadSlots()).length, 2, 'slots survive reopening');
    await again.close();
  });

  it('bytesFrom is the bytes of segment files from a seq to the end: exact at a segment\'s first seq, about right between', async () => {
    const { dir, store } = await openNew({ maxSegmentBytes: SMALL_SEGMENTS });
    await fill(store, 20, 100);
    const { log } = store;
    /** Bytes of the records of seq s and every later one: what bytesFrom approximates. */
    const sizes = (await log.read(1n, 10_000, Infinity)).map((e) => framedSize(e.length));
    const exact = (s: bigint) => sizes.slice(Number(s < 1n ? 1n : s) - 1).reduce((a, b) => a + b, 0);
    const check = async (what: string) => {
      const segs = segmentsOf(dir);
      assert.ok(segs.length >= 4, `${segs.length} segments`);
      for (const [i, seg] of segs.entries()) {
        if (seg.first < log.firstSeq) continue;
        // The segment files on disk, headers aside.
        const onDisk = segs.slice(i).reduce((n, s) => n + s.bytes - HEADER_BYTES, 0);
        assert.equal(onDisk, exact(seg.first));
        assert.equal(await log.bytesFrom(seg.first), onDisk, `${what}: from seq ${seg.first}, a segment's first`);
      }
      // Anywhere else: at least the bytes from seq on, at most those of the index stride before it.
      for (const s of [log.firstSeq, 500n, 777n, 1_500n, 1_999n, 2_000n]) {
        const b = await log.bytesFrom(s);
        assert.ok(b >= exact(s) && b <= exact(s - BigInt(INDEX_STRIDE) + 1n), `${what}: bytesFrom(${s}) = ${b}, exactly ${exact(s)}`);
      }
      assert.ok((await log.bytesFrom(log.firstSeq)) > (await log.bytesFrom(1_500n)));
      assert.equal(await log.bytesFrom(2_001n), 0, 'nothing past the end');
    };
    await check('untrimmed');
    assert.equal(await log.bytesFrom(1n), exact(1n), 'the whole log');
    assert.equal(await log.trimTo(300n, 1_000n), 300n);
    await check('trimmed');
    assert.equal(await log.bytesFrom(1n), await log.bytesFrom(300n), 'a seq below firstSeq counts from firstSeq');
    const seqs = [300n, 777n, 1_999n];
    const was = await Promise.all(seqs.map((s) => log.bytesFrom(s)));
    await store.close();
    const again = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL_SEGMENTS });
    assert.deepEqual(await Promise.all(seqs.map((s) => again.log.bytesFrom(s))), was, 'the same after a restart (from the files)');
    await again.close();
  });

  it('opening refuses a missing store (without create) and a store in use', async () => {
    const missing = path.join(tempDir(), 'none');
    await assert.rejects(openMasterStore(missing, { create: false }), (e) => isReplicatorError(e, ErrorCode.STORE_NOT_FOUND));
    assert.equal(fs.existsSync(missing), false);
    const { dir, store } = await openNew();
    await assert.rejects(openMasterStore(dir, { create: true }), (e) => isReplicatorError(e, ErrorCode.DATA_DIR_LOCKED));
    await assert.rejects(openStoreForReading(dir, 'master'), (e) => isReplicatorError(e, ErrorCode.DATA_DIR_LOCKED));
    assert.ok(fs.existsSync(dir), 'a refused open leaves the directory of the store in use alone');
    await store.close();
  });
});

describe('openStoreForReading', () => {
  it('reads a stopped master\'s and a stopped replica\'s store through one consistent view', async () => {
    const { dir, store } = await openNew();
    await commit(store, [put('k', 'master')]);
    await store.close();
    const master = await openStoreForReading(dir, 'master');
    const mv = master.view();
    assert.equal(await mv.seq(), 1n);
    assert.equal((await mv.get(Buffer.from('k')))?.toString(), 'master');
    await mv.close();
    await master.close();

    // A replica's layout: its applied seq and data generation are meta records.
    const rdir = path.join(tempDir(), 'f');
    const db = await openStore(rdir, { create: true });
    const gen = Buffer.alloc(4);
    gen.writeUInt32BE(3);
    await db.put(metaKey(MetaName.APPLIED_SEQ), u64(42n));
    await db.put(metaKey(MetaName.DATA_GEN), gen);
    await db.put(dataKey(3, Buffer.from('k')), Buffer.from('replica'));
    await db.close();
    const replica = await openStoreForReading(rdir, 'replica');
    const rv = replica.view();
    assert.equal(await rv.seq(), 42n);
    assert.equal((await rv.get(Buffer.from('k')))?.toString(), 'replica');
    assert.equal((await rv.digest()).keys, 1n);
    await rv.close();
    await replica.close();

    await assert.rejects(openStoreForReading(path.join(tempDir(), 'none'), 'replica'), (e) => isReplicatorError(e, ErrorCode.STORE_NOT_FOUND));
  });
});
