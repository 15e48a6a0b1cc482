import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, type ReplicatorError } from '../../src/common/errors.js';
import { INITIAL_HISTORY } from '../../src/storage/epoch-history.js';
import { CrashLogFiles } from '../../src/storage/crash-log-files.js';
import { logDir, openMasterStore, type LevelMasterStore } from '../../src/storage/level-master-store.js';
import { FsLogFiles } from '../../src/storage/log-files.js';
import { decodeHeader, firstSeqOfName, segmentName, type SegmentHeader } from '../../src/storage/segment-format.js';
import { SegmentLog } from '../../src/storage/segment-log.js';
import { GENESIS_CHECKSUM } from '../../src/wire/entry-codec.js';
import { commitHistory, dataAfter, digestOf } from '../helpers/storage-conformance-fixtures.js';
import { tempDir } from '../helpers/processes.js';

/**
 * The log's epoch history on disk (log/epochs, replaced atomically through LogFiles): what
 * a power loss leaves of it (CrashLogFiles: unsynced bytes, undurable creations and
 * renames are lost), and the epoch in segment headers.
 */

const code = (c: ErrorCode) => (err: unknown) => (err as ReplicatorError).code === c;
const SMALL = 2_048;

/** The newest segment's name and header. */
function newestSegment(dir: string): { name: string; header: SegmentHeader } {
  const name = fs.readdirSync(logDir(dir)).filter((n) => firstSeqOfName(n) !== undefined).sort().at(-1)!;
  const header = decodeHeader(fs.readFileSync(path.join(logDir(dir), name)));
  assert.ok(typeof header !== 'string', header as string);
  return { name, header };
}

async function digestNow(store: LevelMasterStore) {
  const view = store.view();
  try {
    return { ...(await view.digest()), seq: await view.seq() };
  } finally {
    await view.close();
  }
}

/** A master store on a power-loss model, opened (or created) in dir. */
async function open(dir: string, create = false) {
  const files = new CrashLogFiles(logDir(dir));
  const store = await openMasterStore(dir, { create, maxSegmentBytes: SMALL, logFiles: files });
  return { files, store };
}

/** The power goes out: the store's LevelDB stops, the log loses what was not durable. */
async function powerLoss(store: LevelMasterStore, files: CrashLogFiles, torn = false): Promise<void> {
  await store.db.close();
  await files.powerLoss({ torn });
}

describe('LogFiles.replace under power loss', () => {
  for (const [when, arm] of [
    ['before the temp file is synced', (f: CrashLogFiles) => (f.beforeSync = (n) => { if (n.endsWith('.tmp')) throw new Error('power cut'); })],
    ['after the rename, before the directory is synced', (f: CrashLogFiles) => (f.beforeSyncDir = () => { throw new Error('power cut'); })],
  ] as const) {
    it(`a replace cut short ${when} leaves the old content`, async () => {
      const dir = path.join(tempDir('lr-replace-'), 'log');
      let files = new CrashLogFiles(dir);
      await files.ensureDir();
      await files.replace('marker', Buffer.from('old'));
      arm(files);
      await assert.rejects(files.replace('marker', Buffer.from('new content')), /power cut/);
      await files.powerLoss({ torn: true });
      files = new CrashLogFiles(dir);
      await files.ensureDir();
      const b = Buffer.alloc(32);
      assert.equal(b.subarray(0, await files.read('marker', b, 0, 32, 0)).toString(), 'old');
      assert.ok(!(await files.list()).includes('marker.tmp'), 'the undurable temp file is gone');
      await files.close();
    });
  }

  it('a resolved replace survives a power loss', async () => {
    const dir = path.join(tempDir('lr-replace-'), 'log');
    const files = new CrashLogFiles(dir);
    await files.ensureDir();
    await files.replace('marker', Buffer.from('old'));
    await files.replace('marker', Buffer.from('new'));
    await files.powerLoss();
    const again = new FsLogFiles(dir);
    const b = Buffer.alloc(8);
    assert.equal(b.subarray(0, await again.read('marker', b, 0, 8, 0)).toString(), 'new');
    await again.close();
  });
});

describe('epoch history of a segment log', () => {
  it('a log without an epochs file has its oldest segment\'s epoch from seq 1; a new one epoch 1', async () => {
    const root = tempDir('lr-epochs-');
    const fresh = await SegmentLog.open(new FsLogFiles(path.join(root, 'a')));
    assert.deepEqual(fresh.epochs, INITIAL_HISTORY);
    assert.equal(fresh.epoch, 1);
    await fresh.close();
    const base = { seq: 40n, checksum: 7, commitTimeMs: 0 };
    const init = await SegmentLog.open(new FsLogFiles(path.join(root, 'b')), { init: { historyId: crypto.randomBytes(16), epoch: 3, base } });
    assert.deepEqual(init.epochs, [{ epoch: 3, firstSeq: 1n }]);
    assert.ok(!fs.existsSync(path.join(root, 'b', 'epochs')), 'nothing to write for the default');
    await init.close();
  });

  it('beginEpoch on an empty log replaces its only segment\'s header in place', async () => {
    const dir = path.join(tempDir('lr-epochs-'), 'm');
    const { files, store } = await open(dir, true);
    await store.log.beginEpoch(4, 1n);
    assert.deepEqual(store.log.epochs, [{ epoch: 1, firstSeq: 1n }, { epoch: 4, firstSeq: 1n }]);
    assert.deepEqual(fs.readdirSync(logDir(dir)).filter((n) => firstSeqOfName(n) !== undefined), [segmentName(1n)]);
    assert.equal(newestSegment(dir).header.epoch, 4);
    await powerLoss(store, files, true);
    const again = await open(dir);
    assert.equal(again.store.log.epoch, 4);
    assert.equal(newestSegment(dir).header.epoch, 4);
    await commitHistory(again.store, 3);
    assert.deepEqual(await digestNow(again.store), { ...digestOf(dataAfter(3)), seq: 3n });
    await again.store.close();
  });

  it('a resolved beginEpoch survives a power loss, and the epoch\'s first entry starts a segment of that epoch', async () => {
    const dir = path.join(tempDir('lr-epochs-'), 'm');
    const { files, store } = await open(dir, true);
    await commitHistory(store, 10);
    await store.log.beginEpoch(2, 11n);
    assert.deepEqual(store.log.epochs, [{ epoch: 1, firstSeq: 1n }, { epoch: 2, firstSeq: 11n }]);
    assert.equal(store.log.epoch, 2);
    assert.equal(newestSegment(dir).name, segmentName(11n));
    assert.equal(newestSegment(dir).header.epoch, 2);
    await powerLoss(store, files, true);
    const again = await open(dir);
    assert.deepEqual(again.store.log.epochs, [{ epoch: 1, firstSeq: 1n }, { epoch: 2, firstSeq: 11n }]);
    await commitHistory(again.store, 5);
    assert.equal(newestSegment(dir).name, segmentName(11n));
    assert.equal(newestSegment(dir).header.epoch, 2);
    assert.deepEqual(await digestNow(again.store), { ...digestOf(dataAfter(15)), seq: 15n });
    await again.store.close();
  });

  for (const [when, arm] of [
    ['before the new history\'s temp file is synced', (f: CrashLogFiles) => (f.beforeSync = (n) => { if (n === 'epochs.tmp') throw new Error('power cut'); })],
    ['after its rename, before the directory is synced', (f: CrashLogFiles) => (f.beforeSyncDir = () => { throw new Error('power cut'); })],
  ] as const) {
    it(`an interrupted beginEpoch (${when}) leaves the old history intact`, async () => {
      const dir = path.join(tempDir('lr-epochs-'), 'm');
      const { files, store } = await open(dir, true);
      await commitHistory(store, 8);
      await store.log.beginEpoch(2, 9n);
      await commitHistory(store, 4);
      arm(files);
      await assert.rejects(store.log.beginEpoch(3, 13n), /power cut/);
      assert.equal(store.log.epoch, 2, 'the history in memory changed although the write failed');
      await powerLoss(store, files, true);
      const again = await open(dir);
      assert.deepEqual(again.store.log.epochs, [{ epoch: 1, firstSeq: 1n }, { epoch: 2, firstSeq: 9n }]);
      assert.equal(again.store.log.lastSeq, 12n);
      // The promotion can be done again.
      await again.store.log.beginEpoch(3, 13n);
      await commitHistory(again.store, 2);
      assert.equal(newestSegment(dir).header.epoch, 3);
      await again.store.close();
    });
  }

  it('a crash after the history is durable and before the new segment exists: the next entry starts the segment of the new epoch', async () => {
    const dir = path.join(tempDir('lr-epochs-'), 'm');
    const { files, store } = await open(dir, true);
    await commitHistory(store, 6);
    files.beforeSync = (n) => {
      if (n === segmentName(7n)) throw new Error('power cut');
    };
    await assert.rejects(store.log.beginEpoch(2, 7n), code(ErrorCode.STORE_FAILED));
    await powerLoss(store, files);
    const again = await open(dir);
    assert.deepEqual(again.store.log.epochs, [{ epoch: 1, firstSeq: 1n }, { epoch: 2, firstSeq: 7n }]);
    assert.equal(newestSegment(dir).header.epoch, 1, 'the new segment did not survive');
    await commitHistory(again.store, 3);
    assert.deepEqual(newestSegment(dir).name, segmentName(7n));
    assert.equal(newestSegment(dir).header.epoch, 2);
    assert.deepEqual(await digestNow(again.store), { ...digestOf(dataAfter(9)), seq: 9n });
    await again.store.close();
  });

  it('a torn temp file left by a killed process is ignored (and removed) at open', async () => {
    const dir = path.join(tempDir('lr-epochs-'), 'm');
    let store = await openMasterStore(dir, { create: true });
    await commitHistory(store, 3);
    await store.log.beginEpoch(5, 4n);
    await store.close();
    fs.writeFileSync(path.join(logDir(dir), 'epochs.tmp'), '# level-replicator epoch hi');
    store = await openMasterStore(dir, { create: false });
    assert.deepEqual(store.log.epochs, [{ epoch: 1, firstSeq: 1n }, { epoch: 5, firstSeq: 4n }]);
    assert.ok(!fs.existsSync(path.join(logDir(dir), 'epochs.tmp')));
    assert.match(fs.readFileSync(path.join(logDir(dir), 'epochs'), 'utf8'), /^#.*\n1 1\n5 4\n$/);
    await store.close();
  });

  it('a damaged epochs file stops the open with CORRUPT_ENTRY', async () => {
    const dir = path.join(tempDir('lr-epochs-'), 'm');
    const store = await openMasterStore(dir, { create: true });
    await store.log.beginEpoch(2, 1n);
    await store.close();
    fs.writeFileSync(path.join(logDir(dir), 'epochs'), '1 1\n2 x\n');
    await assert.rejects(openMasterStore(dir, { create: false }), code(ErrorCode.CORRUPT_ENTRY));
  });

  it('reset (a snapshot, a repair) keeps the history; new segments carry the newest epoch', async () => {
    const dir = path.join(tempDir('lr-epochs-'), 'log');
    let log = await SegmentLog.open(new FsLogFiles(dir));
    await log.adoptEpochs([{ epoch: 1, firstSeq: 1n }, { epoch: 3, firstSeq: 50n }]);
    await log.reset({ seq: 100n, checksum: GENESIS_CHECKSUM, commitTimeMs: 0 }, crypto.randomBytes(16));
    assert.deepEqual(log.epochs, [{ epoch: 1, firstSeq: 1n }, { epoch: 3, firstSeq: 50n }]);
    await log.close();
    log = await SegmentLog.open(new FsLogFiles(dir));
    assert.equal(log.epoch, 3);
    assert.equal(log.firstSeq, 101n);
    const header = decodeHeader(fs.readFileSync(path.join(dir, segmentName(101n))));
    assert.equal((header as SegmentHeader).epoch, 3);
    await log.close();
  });

  it('adoptEpochs writes nothing for the history it already has', async () => {
    const dir = path.join(tempDir('lr-epochs-'), 'log');
    const files = new CrashLogFiles(dir);
    const log = await SegmentLog.open(files);
    await log.adoptEpochs([{ epoch: 1, firstSeq: 1n }, { epoch: 2, firstSeq: 9n }]);
    let syncs = 0;
    files.beforeSync = () => void syncs++;
    await log.adoptEpochs([{ epoch: 1, firstSeq: 1n }, { epoch: 2, firstSeq: 9n }]);
    assert.equal(syncs, 0);
    await log.close();
  });
});
