import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { chainsFrom, decodeEntry, entryChecksum, entrySeq, GENESIS_CHECKSUM, MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { dataKey } from '../../src/storage/layout.js';
import { chunkOf } from '../../src/storage/log-chunk.js';
import { decodeHeader, firstSeqOfName, HEADER_BYTES, scanSegment } from '../../src/storage/segment-format.js';
import { openReplicaStore, type LevelReplicaStore } from '../../src/storage/level-replica-store.js';
import { GroupCommitter } from '../../src/master/group-commit.js';
import { logDir, openMasterStore } from '../../src/storage/level-master-store.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
const put = (k: string, v: string): Mutation => ({ kind: MutationKind.PUT, key: Buffer.from(k), value: Buffer.from(v) });

async function openMaster(dir: string, opts: { maxSegmentBytes?: number } = {}) {
  const store = await openMasterStore(dir, { create: true, ...opts });
  const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 100, maxGroupBytes: 1 << 20 }, log, () => {});
  const close = async () => {
    await committer.close();
    await store.close();
  };
  return { db: store.db, wal: store.log, committer, close };
}

describe('master write path (group commit + log)', () => {
  it('concurrent writers get unique, gap-free seqs; each request gets consecutive seqs', async () => {
    const { wal, committer, close } = await openMaster(path.join(tempDir(), 'm'));
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => committer.submit(Array.from({ length: 7 }, (_, j) => [put(`k${i}-${j}`, 'v')]), 14)),
    );
    const seqs = results.flatMap((r) => {
      assert.equal(r.lastSeq - r.firstSeq, 6n);
      return Array.from({ length: 7 }, (_, j) => r.firstSeq + BigInt(j));
    });
    assert.deepEqual([...seqs].sort((a, b) => (a < b ? -1 : 1)), Array.from({ length: 350 }, (_, i) => BigInt(i + 1)));
    assert.equal(wal.lastSeq, 350n);
    // The log chains from genesis, entry by entry.
    let prev = GENESIS_CHECKSUM;
    const entries = await wal.read(1n, 1_000, Infinity);
    assert.equal(entries.length, 350);
    for (const [i, e] of entries.entries()) {
      assert.equal(decodeEntry(e).seq, BigInt(i + 1));
      assert.ok(chainsFrom(e, prev));
      prev = entryChecksum(e);
    }
    await close();
  });

  it('an atomic write of several mutations takes one seq; recovery restores the position', async () => {
    const dir = path.join(tempDir(), 'm');
    let m = await openMaster(dir);
    await m.committer.submit([[put('a', '1'), put('b', '2'), { kind: MutationKind.DELETE, key: Buffer.from('a') }]], 6);
    const { lastSeq, lastChecksum, historyId } = m.wal;
    assert.equal(lastSeq, 1n);
    assert.equal(await m.db.get(dataKey(0, Buffer.from('a'))), undefined);
    assert.equal((await m.db.get(dataKey(0, Buffer.from('b'))))?.toString(), '2');
    await m.close();
    m = await openMaster(dir);
    assert.equal(m.wal.lastSeq, lastSeq);
    assert.equal(m.wal.lastChecksum, lastChecksum);
    assert.ok(m.wal.historyId.equals(historyId), 'history id survives restarts');
    const next = await m.committer.submit([[put('c', '3')]], 2);
    assert.equal(next.firstSeq, 2n);
    await m.close();
  });

  it('appends each group whole to a segment: reads and lookups cross group and segment boundaries, and the files verify', async () => {
    const dir = path.join(tempDir(), 'm');
    // Segments of one byte: every group after the first rolls to a new segment, so each
    // segment holds exactly one group (a group is never split across segments).
    let m = await openMaster(dir, { maxSegmentBytes: 1 });
    // Three requests of ten writes each: three groups (maxGroupEntries is 100).
    for (let r = 0; r < 3; r++) await m.committer.submit(Array.from({ length: 10 }, (_, i) => [put(`k${r}-${i}`, `v${i}`)]), 50);
    const fromMemory = await m.wal.read(1n, 1_000, Infinity);
    await m.close();
    const names = fs.readdirSync(logDir(dir)).filter((n) => firstSeqOfName(n) !== undefined).sort();
    assert.deepEqual(names.map(firstSeqOfName), [1n, 11n, 21n], 'segments are named after their first seq, one per group');
    // On disk: each segment is its header, chained from the one before, and exactly its group's records.
    let prev = { seq: 0n, checksum: GENESIS_CHECKSUM };
    for (const [i, name] of names.entries()) {
      const file = fs.readFileSync(path.join(logDir(dir), name));
      const header = decodeHeader(file);
      assert.ok(typeof header !== 'string', String(header));
      assert.ok(header.historyId.equals(m.wal.historyId));
      assert.deepEqual([header.base.seq, header.base.checksum], [prev.seq, prev.checksum], `segment ${i} starts where the one before ended`);
      const scan = scanSegment(file, header);
      assert.equal(scan.bad, undefined);
      assert.equal(scan.goodBytes, file.length, 'nothing after the records');
      assert.equal(scan.last.seq, BigInt(10 * (i + 1)));
      const group = fromMemory.slice(10 * i, 10 * (i + 1));
      assert.ok(file.subarray(HEADER_BYTES).equals(chunkOf(group)), `segment ${i} holds its group's entries as framed records`);
      prev = { seq: scan.last.seq, checksum: scan.last.checksum };
    }
    assert.equal(prev.checksum, entryChecksum(fromMemory[29]));
    // Reopened (opening verifies every segment): the tail is empty, so reads come from the files.
    m = await openMaster(dir, { maxSegmentBytes: 1 });
    assert.equal(m.wal.lastSeq, 30n);
    const stored = await m.wal.read(7n, 9, Infinity);
    assert.deepEqual(stored.map(entrySeq), [7n, 8n, 9n, 10n, 11n, 12n, 13n, 14n, 15n], 'a read crosses group and segment boundaries');
    assert.ok(stored[0].equals(fromMemory[6]));
    assert.deepEqual((await m.wal.read(1n, 1_000, Infinity)).map((e) => e.toString('hex')), fromMemory.map((e) => e.toString('hex')));
    assert.equal(entrySeq((await m.wal.entryAt(20n))!), 20n);
    assert.equal(entrySeq((await m.wal.entryAt(21n))!), 21n);
    assert.equal(await m.wal.entryAt(31n), undefined);
    assert.equal(await m.wal.checksumAt(10n), entryChecksum(fromMemory[9]));
    await m.close();
  });

  it('refuses writes after close', async () => {
    const m = await openMaster(path.join(tempDir(), 'm'));
    await m.committer.close();
    await assert.rejects(m.committer.submit([[put('a', '1')]], 2), /shutting down/);
    await m.close();
  });
});

describe('follower apply', () => {
  async function setup() {
    const m = await openMaster(path.join(tempDir(), 'm'));
    for (let i = 0; i < 5; i++) await m.committer.submit([[put(`k${i}`, `v${i}`)]], 4);
    const entries = await m.wal.read(1n, 100, Infinity);
    const fdir = path.join(tempDir(), 'f');
    const applier = await openReplicaStore(fdir, { create: true, sync: false });
    return { m, entries, fdir, applier };
  }

  /** A user key's value in the follower's active data, through one consistent view. */
  async function valueOf(store: LevelReplicaStore, key: string): Promise<Buffer | undefined> {
    const view = store.view();
    try {
      return await view.get(Buffer.from(key));
    } finally {
      await view.close();
    }
  }

  it('applies entries and the applied position atomically, and resumes after reopen', async () => {
    const { m, entries, fdir, applier } = await setup();
    await applier.apply(entries.slice(0, 3), m.wal.historyId);
    assert.equal(applier.appliedSeq, 3n);
    await applier.close();
    const reopened = await openReplicaStore(fdir, { create: false, sync: false });
    assert.equal(reopened.appliedSeq, 3n);
    assert.equal(reopened.appliedChecksum, entryChecksum(entries[2]));
    assert.ok(reopened.historyId.equals(m.wal.historyId));
    await reopened.apply(entries.slice(3), m.wal.historyId);
    assert.equal((await valueOf(reopened, 'k4'))?.toString(), 'v4');
    await reopened.close();
    await m.close();
  });

  it('refuses a repeated, skipped or corrupted entry and writes nothing', async () => {
    const { m, entries, applier } = await setup();
    await applier.apply(entries.slice(0, 2), m.wal.historyId);
    await assert.rejects(applier.apply([entries[1]], m.wal.historyId), /expected seq 3, received seq 2/);
    await assert.rejects(applier.apply([entries[3]], m.wal.historyId), /expected seq 3, received seq 4/);
    // A valid first entry followed by a bad one: the whole batch is refused.
    await assert.rejects(applier.apply([entries[2], entries[4]], m.wal.historyId), /SEQ|expected seq 4/);
    const flipped = Buffer.from(entries[2]);
    flipped[flipped.length - 6] ^= 0xff;
    await assert.rejects(applier.apply([flipped], m.wal.historyId), /does not chain|corrupt/);
    await assert.rejects(applier.apply([entries[2]], Buffer.alloc(16)), /history/);
    assert.equal(applier.appliedSeq, 2n);
    assert.equal(await valueOf(applier, 'k2'), undefined, 'nothing of a refused batch was written');
    await applier.close();
    await m.close();
  });
});
