import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../src/common/errors.js';
import { entrySeq } from '../../src/wire/entry-codec.js';
import { CrashLogFiles } from '../../src/storage/crash-log-files.js';
import { logDir, openMasterStore, type LevelMasterStore } from '../../src/storage/level-master-store.js';
import { openReplicaStore } from '../../src/storage/level-replica-store.js';
import { FsLogFiles } from '../../src/storage/log-files.js';
import { firstSeqOfName, HEADER_BYTES } from '../../src/storage/segment-format.js';
import { SegmentLog } from '../../src/storage/segment-log.js';
import { commitHistory, dataAfter, digestOf, entries } from '../helpers/storage-conformance-fixtures.js';
import { tempDir } from '../helpers/processes.js';

/**
 * The log in segment files (issue: WAL segments): segment boundaries, a torn record at the
 * end of a segment, a missing middle segment, damage inside a segment, and a store that is
 * behind (or ahead of) its log at start. Real files, real LevelDB.
 */

const SMALL = 2_048; // bytes per segment: a few dozen entries, so histories span many segments

async function digestNow(store: LevelMasterStore) {
  const view = store.view();
  try {
    return { ...(await view.digest()), seq: await view.seq() };
  } finally {
    await view.close();
  }
}

const segments = (dir: string) => fs.readdirSync(logDir(dir)).filter((n) => firstSeqOfName(n) !== undefined).sort();

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp) {
  await assert.rejects(p, (err: { code?: string; message: string }) => {
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('segment log', () => {
  it('spans many segments: every entry reads back across boundaries, after a restart too', async () => {
    const dir = path.join(tempDir('lr-seg-'), 'm');
    let store = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
    await commitHistory(store, 300);
    assert.ok(segments(dir).length > 5, `only ${segments(dir).length} segments`);
    const all = await entries(store, 1n, 300n);
    assert.deepEqual(all.map(entrySeq), Array.from({ length: 300 }, (_, i) => BigInt(i + 1)));
    await store.close();
    store = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL });
    const again = await entries(store, 1n, 300n);
    assert.deepEqual(again.map((e) => e.toString('hex')), all.map((e) => e.toString('hex')));
    // Reads starting at every seq near a boundary.
    for (const name of segments(dir).slice(1, 4)) {
      const first = firstSeqOfName(name)!;
      for (const s of [first - 1n, first, first + 1n]) assert.equal(entrySeq((await store.log.read(s, 1, 1))[0]), s);
    }
    assert.deepEqual(await digestNow(store), { ...digestOf(dataAfter(300)), seq: 300n });
    await store.close();
  });

  it('trimming moves firstSeq exactly and deletes only whole segments below it; a restart keeps it', async () => {
    const dir = path.join(tempDir('lr-seg-'), 'm');
    let store = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
    await commitHistory(store, 300);
    const before = segments(dir);
    const checksum150 = await store.log.checksumAt(150n);
    assert.ok(checksum150 !== undefined);
    assert.equal(await store.log.trimTo(151n, 10n), 151n);
    assert.equal(store.log.firstSeq, 151n);
    const after = segments(dir);
    assert.ok(after.length < before.length);
    assert.ok(after.every((n) => before.includes(n)));
    assert.ok(firstSeqOfName(after[0])! <= 151n, 'the segment holding seq 151 stays');
    await rejectsWith(store.log.read(150n, 1, 1), ErrorCode.LOG_TRIMMED);
    assert.equal(await store.log.checksumAt(150n), checksum150, 'the entry before firstSeq still names its checksum');
    assert.equal(await store.log.checksumAt(149n), undefined);
    await store.close();
    store = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL });
    assert.equal(store.log.firstSeq, 151n);
    assert.equal(store.log.lastSeq, 300n);
    await store.close();
  });

  it('a torn record at the end of the newest segment is cut off on open; the data stays exact', async () => {
    const dir = path.join(tempDir('lr-seg-'), 'm');
    let store = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
    await commitHistory(store, 40);
    await store.close();
    // An append of seq 41 that never finished: half a record at the end of the newest segment.
    const newest = path.join(logDir(dir), segments(dir).at(-1)!);
    const donor = fs.readFileSync(newest).subarray(HEADER_BYTES, HEADER_BYTES + 30);
    fs.appendFileSync(newest, donor.subarray(0, 17));
    const size = fs.statSync(newest).size;
    store = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL });
    assert.equal(store.log.lastSeq, 40n);
    assert.equal(fs.statSync(newest).size, size - 17);
    assert.deepEqual(await digestNow(store), { ...digestOf(dataAfter(40)), seq: 40n });
    await commitHistory(store, 5);
    assert.deepEqual(await digestNow(store), { ...digestOf(dataAfter(45)), seq: 45n });
    await store.close();
  });

  it('a missing middle segment stops the start with CORRUPT_ENTRY naming the missing seqs', async () => {
    const dir = path.join(tempDir('lr-seg-'), 'm');
    const store = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
    await commitHistory(store, 200);
    await store.close();
    const names = segments(dir);
    const gone = names[2];
    fs.rmSync(path.join(logDir(dir), gone));
    const from = firstSeqOfName(gone)!;
    const to = firstSeqOfName(names[3])! - 1n;
    await rejectsWith(openMasterStore(dir, { create: false }), ErrorCode.CORRUPT_ENTRY, new RegExp(`seqs ${from}\\.\\.${to} are missing.*intact up to seq ${from - 1n}`));
  });

  it('a damaged record inside the log stops the start; --repair-log cuts it and starts a new history', async () => {
    const dir = path.join(tempDir('lr-seg-'), 'm');
    let store = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
    await commitHistory(store, 120);
    const history = Buffer.from(store.log.historyId);
    await store.close();
    const name = segments(dir)[1];
    const file = path.join(logDir(dir), name);
    const bytes = fs.readFileSync(file);
    // The fifth record of the segment: skip four records (tag, one-byte varint length, entry).
    let at = HEADER_BYTES;
    for (let i = 0; i < 4; i++) at += 2 + bytes[at + 1];
    bytes[at + 2 + 12] ^= 0x01; // inside its entry (the seq field): it no longer chains; the records after it still do
    fs.writeFileSync(file, bytes);
    const bad = firstSeqOfName(name)! + 4n;
    await rejectsWith(openMasterStore(dir, { create: false }), ErrorCode.CORRUPT_ENTRY, new RegExp(`log entry ${bad} is corrupt .*intact up to seq ${bad - 1n}\\.`));
    // The store holds everything up to 120, beyond the cut: the log restarts at the store's seq.
    store = await openMasterStore(dir, { create: false, repairLog: true });
    assert.notDeepEqual(store.log.historyId, history);
    assert.equal(store.log.lastSeq, 120n);
    assert.deepEqual(await digestNow(store), { ...digestOf(dataAfter(120)), seq: 120n });
    await commitHistory(store, 3);
    assert.deepEqual(await digestNow(store), { ...digestOf(dataAfter(123)), seq: 123n });
    await store.close();
  });

  it('a store behind its log at start is brought up to it by replay; one ahead of it is refused', async () => {
    const dir = path.join(tempDir('lr-seg-'), 'm');
    let store = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
    await commitHistory(store, 50);
    await store.close();
    // The store as it was at seq 50, kept aside; the log then goes on to 250.
    const saved = path.join(path.dirname(dir), 'store-at-50');
    fs.cpSync(path.join(dir, 'store'), saved, { recursive: true });
    store = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL });
    await commitHistory(store, 200);
    await store.close();
    const savedLog = path.join(path.dirname(dir), 'log-at-250');
    fs.cpSync(logDir(dir), savedLog, { recursive: true });
    fs.rmSync(path.join(dir, 'store'), { recursive: true });
    fs.cpSync(saved, path.join(dir, 'store'), { recursive: true });
    store = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL });
    assert.equal(store.log.lastSeq, 250n);
    assert.deepEqual(await digestNow(store), { ...digestOf(dataAfter(250)), seq: 250n });
    await store.close();
    // Now a log that lost its end (the log of seq 50 under a store of seq 250) is refused.
    fs.rmSync(logDir(dir), { recursive: true });
    store = await openMasterStore(path.join(path.dirname(dir), 'other'), { create: true, maxSegmentBytes: SMALL });
    await store.close();
    fs.cpSync(path.join(path.dirname(dir), 'other', 'log'), logDir(dir), { recursive: true });
    await rejectsWith(openMasterStore(dir, { create: false }), ErrorCode.CORRUPT_ENTRY, /store reflects seq 250 but the log ends at seq 0/);
    fs.rmSync(logDir(dir), { recursive: true });
    fs.cpSync(savedLog, logDir(dir), { recursive: true });
  });

  it('a follower keeps its own log: entries appended before the store, replayed when the store is behind', async () => {
    const root = tempDir('lr-seg-');
    const master = await openMasterStore(path.join(root, 'm'), { create: true });
    await commitHistory(master, 100);
    const all = await entries(master, 1n, 100n);
    const fdir = path.join(root, 'f');
    let replica = await openReplicaStore(fdir, { create: true, sync: true, maxSegmentBytes: SMALL });
    await replica.apply(all.slice(0, 30), master.log.historyId);
    await replica.close();
    const saved = path.join(root, 'store-at-30');
    fs.cpSync(path.join(fdir, 'store'), saved, { recursive: true });
    replica = await openReplicaStore(fdir, { create: false, sync: true, maxSegmentBytes: SMALL });
    for (let i = 30; i < 100; i += 10) await replica.apply(all.slice(i, i + 10), master.log.historyId);
    assert.ok(segments(fdir).length > 1);
    assert.deepEqual((await replica.log.read(1n, 1000, 1 << 20)).map((e) => e.toString('hex')).slice(0, 5), all.slice(0, 5).map((e) => e.toString('hex')));
    await replica.close();
    fs.rmSync(path.join(fdir, 'store'), { recursive: true });
    fs.cpSync(saved, path.join(fdir, 'store'), { recursive: true });
    replica = await openReplicaStore(fdir, { create: false, sync: true, maxSegmentBytes: SMALL });
    assert.equal(replica.appliedSeq, 100n);
    const view = replica.view();
    assert.deepEqual(await view.digest(), digestOf(dataAfter(100)));
    await view.close();
    await replica.close();
    await master.close();
  });
});

describe('power loss (CrashLogFiles: every write not yet fdatasynced is lost, or torn)', () => {
  it('no acknowledged write is lost and the store never holds a change the durable log lacks', async () => {
    const dir = path.join(tempDir('lr-power-'), 'm');
    let acked = 0n; // every seq up to this one was acknowledged (commitGroup resolved)
    let rounds = 0;
    let random = 12345;
    const rand = () => ((random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (; rounds < 25; rounds++) {
      const files = new CrashLogFiles(logDir(dir));
      const store = await openMasterStore(dir, { create: rounds === 0, maxSegmentBytes: 4_096, logFiles: files });
      // Recovery: everything acknowledged is there, and the data is exactly the log's.
      assert.ok(store.log.lastSeq >= acked, `round ${rounds}: log ends at ${store.log.lastSeq}, ${acked} was acknowledged`);
      const n = Number(store.log.lastSeq);
      assert.deepEqual(await digestNow(store), { ...digestOf(dataAfter(n)), seq: BigInt(n) }, `round ${rounds}`);
      acked = store.log.lastSeq;
      // Load until the power goes out at a random sync.
      let syncs = 0;
      const cutAt = 1 + Math.floor(rand() * 12);
      files.beforeSync = () => {
        if (++syncs === cutAt) throw new Error('power cut');
      };
      try {
        for (;;) {
          await commitHistory(store, 1 + Math.floor(rand() * 6));
          acked = store.log.lastSeq;
        }
      } catch (err) {
        assert.match((err as Error).message, /power cut/);
      }
      // The process is gone: its LevelDB writes stay in the page cache (written without
      // fsync, they may also be lost: the store is only ever behind), the log loses what
      // was not synced.
      await store.db.close();
      await files.powerLoss({ torn: rand() < 0.5, random: rand });
    }
    assert.ok(acked > 50n);
  });

  it('a --sync follower never acknowledges what a power loss can take from it', async () => {
    const root = tempDir('lr-power-');
    const master = await openMasterStore(path.join(root, 'm'), { create: true });
    await commitHistory(master, 400);
    const all = await entries(master, 1n, 400n);
    const fdir = path.join(root, 'f');
    let durable = 0n; // the follower's acknowledged applied seq (what it would report as durable)
    let random = 777;
    const rand = () => ((random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 20 && durable < 400n; round++) {
      const files = new CrashLogFiles(logDir(fdir));
      const replica = await openReplicaStore(fdir, { create: round === 0, sync: true, maxSegmentBytes: 4_096, logFiles: files });
      assert.ok(replica.appliedSeq >= durable, `round ${round}: applied ${replica.appliedSeq} < acknowledged ${durable}`);
      const view = replica.view();
      assert.deepEqual(await view.digest(), digestOf(dataAfter(Number(replica.appliedSeq))));
      await view.close();
      durable = replica.appliedSeq;
      let syncs = 0;
      const cutAt = 1 + Math.floor(rand() * 8);
      files.beforeSync = () => {
        if (++syncs === cutAt) throw new Error('power cut');
      };
      try {
        while (replica.appliedSeq < 400n) {
          const from = Number(replica.appliedSeq);
          await replica.apply(all.slice(from, from + 1 + Math.floor(rand() * 15)), master.log.historyId);
          durable = replica.appliedSeq; // commit resolved: this is when the follower acknowledges
        }
      } catch (err) {
        assert.match((err as Error).message, /power cut/);
      }
      await (replica as unknown as { db: { close(): Promise<void> } }).db.close();
      await files.powerLoss({ torn: rand() < 0.5, random: rand });
    }
    await master.close();
  });
});

describe('segment files on disk', () => {
  it('reading a long log back keeps at most a few files open (no descriptor per segment)', async () => {
    const dir = path.join(tempDir('lr-seg-'), 'm');
    let store = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
    await commitHistory(store, 3_000);
    await store.close();
    const names = segments(dir);
    assert.ok(names.length > 60, `${names.length} segments`);
    // Reopened (the open verifies every segment), the in-memory tail is empty: reading from
    // seq 1 walks every segment file again.
    const before = fs.readdirSync('/proc/self/fd').length;
    store = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL });
    const all = await entries(store, 1n, 3_000n);
    assert.equal(all.length, 3_000);
    const after = fs.readdirSync('/proc/self/fd').length;
    assert.ok(after - before <= 40, `${after - before} more descriptors open (LevelDB's included) after reading ${names.length} segments`);
    await store.close();
  });

  it('while reset() replaces the segments, readers see no history (not a crash), then the new one', async () => {
    // A follower adopting its first history resets its log while its health loop and
    // chained subscribers read historyId; for a moment there is no segment at all.
    const dir = tempDir('lr-seg-');
    const log = await SegmentLog.open(new FsLogFiles(dir));
    const next = Buffer.alloc(16, 7);
    const resetting = log.reset({ seq: 0n, checksum: 0, commitTimeMs: 0 }, next);
    assert.ok(log.historyId.every((b) => b === 0), 'no history inside reset');
    await resetting;
    assert.ok(log.historyId.equals(next));
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
