import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { entrySeq, MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { APPLIED_SEQ_KEY, dataKey, LOG_PREFIX_END, LOG_PREFIX_START } from '../../src/storage/layout.js';
import type { Store } from '../../src/storage/level-store.js';
import { logDir, openMasterStore } from '../../src/storage/level-master-store.js';
import { splitChunk } from '../../src/storage/log-chunk.js';
import { FsLogFiles } from '../../src/storage/log-files.js';
import { decodeHeader, firstSeqOfName, HEADER_BYTES, scanSegment } from '../../src/storage/segment-format.js';
import { GroupCommitter, type CommitResult } from '../../src/master/group-commit.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
const put = (k: string, v: string): Mutation => ({ kind: MutationKind.PUT, key: Buffer.from(k), value: Buffer.from(v) });

/**
 * What the store did, in order: writes of records to a log segment (one per group, the
 * seqs they hold; `durable` for a write that is durable when it returns, O_DSYNC),
 * fdatasyncs of a segment, and LevelDB batches.
 */
type Event =
  | { kind: 'append'; seqs: bigint[]; bytes: number; durable: boolean }
  | { kind: 'fdatasync' }
  | {
      kind: 'batch';
      /** The options its write() got (undefined: none). */
      sync: boolean | undefined;
      /** Data keys it put or deleted. */
      dataOps: number;
      /** Keys under the old log prefix (the log no longer lives in LevelDB). */
      logOps: number;
      /** The seq it records as the position the data reflects. */
      positionSeq: bigint | undefined;
    };

const DATA_PREFIX = 0x02;
const isLogKey = (key: Buffer) => key.compare(LOG_PREFIX_START) >= 0 && key.compare(LOG_PREFIX_END) < 0;

/** The log's real files, with every record write (plain or durable) and fdatasync of a segment noted in `events` once `recording`. */
class RecordingLogFiles extends FsLogFiles {
  recording = false;

  constructor(
    dir: string,
    private readonly events: Event[],
  ) {
    super(dir);
  }

  override write(name: string, data: Buffer, offset: number, length: number, position: number): Promise<void> {
    this.note(name, data, offset, length, position, false);
    return super.write(name, data, offset, length, position);
  }

  override writeDurable(name: string, data: Buffer, offset: number, length: number, position: number): Promise<void> {
    this.note(name, data, offset, length, position, true);
    return super.writeDurable(name, data, offset, length, position);
  }

  private note(name: string, data: Buffer, offset: number, length: number, position: number, durable: boolean): void {
    // Position 0 is a new segment's header; records come after it.
    if (this.recording && firstSeqOfName(name) !== undefined && position >= HEADER_BYTES) {
      this.events.push({ kind: 'append', seqs: splitChunk(data.subarray(offset, offset + length)).map(entrySeq), bytes: length, durable });
    }
  }

  override sync(name: string): Promise<void> {
    if (this.recording && firstSeqOfName(name) !== undefined) this.events.push({ kind: 'fdatasync' });
    return super.sync(name);
  }
}

/**
 * Records every LevelDB batch written to the store, whichever of classic-level's two
 * ways reaches the native write:
 * - a chained batch, db.batch() with no arguments: counted when its write() is called;
 * - the array form: db.batch(ops, options) (abstract-level, which ends in db._batch) or
 *   db._batch(ops, options) called directly: counted in _batch.
 * Each batch is one native write (and one fsync when sync is set).
 */
function recordBatches(db: Store, events: Event[]): void {
  const note = (rec: Extract<Event, { kind: 'batch' }>, key: Buffer, value?: Buffer) => {
    if (isLogKey(key)) rec.logOps++;
    else if (key[0] === DATA_PREFIX) rec.dataOps++;
    else if (key.equals(APPLIED_SEQ_KEY) && value) rec.positionSeq = value.readBigUInt64BE();
  };
  const newRecord = (sync: boolean | undefined): Extract<Event, { kind: 'batch' }> => ({ kind: 'batch', sync, dataOps: 0, logOps: 0, positionSeq: undefined });
  const internal = db as unknown as {
    batch: (...args: unknown[]) => unknown;
    _batch: (ops: { key: Buffer; value?: Buffer }[], options?: { sync?: boolean }) => Promise<void>;
  };
  const originalArray = internal._batch.bind(db);
  internal._batch = (ops, options) => {
    const rec = newRecord(options?.sync);
    for (const op of ops) note(rec, op.key, op.value);
    events.push(rec);
    return originalArray(ops, options);
  };
  const originalBatch = internal.batch.bind(db);
  internal.batch = (...args: unknown[]): unknown => {
    if (args.length > 0) return originalBatch(...args); // the array form: recorded in _batch
    const batch = originalBatch() as ReturnType<Store['batch']>;
    const rec = newRecord(undefined);
    const origPut = batch.put.bind(batch);
    const origDel = batch.del.bind(batch);
    const origWrite = batch.write.bind(batch) as (options?: { sync?: boolean }) => Promise<void>;
    batch.put = ((key: Buffer, value: Buffer) => {
      note(rec, key, value);
      return origPut(key, value);
    }) as typeof batch.put;
    batch.del = ((key: Buffer) => {
      note(rec, key);
      return origDel(key);
    }) as typeof batch.del;
    batch.write = ((options?: { sync?: boolean }) => {
      rec.sync = options?.sync;
      events.push(rec);
      return origWrite(options);
    }) as typeof batch.write;
    return batch;
  };
}

async function openMaster(opts: { sync: boolean; maxGroupEntries?: number }) {
  const dir = path.join(tempDir(), 'm');
  const events: Event[] = [];
  const files = new RecordingLogFiles(logDir(dir), events);
  const store = await openMasterStore(dir, { create: true, logFiles: files });
  files.recording = true; // what opening did (the first segment's header) is not a group
  recordBatches(store.db, events);
  const committer = new GroupCommitter(store, { sync: opts.sync, maxGroupEntries: opts.maxGroupEntries ?? 10_000, maxGroupBytes: 1 << 24 }, log, () => {});
  const appends = () => events.filter((e) => e.kind === 'append');
  const batches = () => events.filter((e) => e.kind === 'batch');
  const close = async () => {
    await committer.close();
    await store.close();
  };
  return { dir, store, wal: store.log, committer, events, appends, batches, close };
}

/** Request i carries 1 + i % 3 writes, so requests of different sizes share groups. */
const writesOf = (i: number) => Array.from({ length: 1 + (i % 3) }, (_, j) => [put(`k${i}-${j}`, `v${i}-${j}`)]);

/** Asserts the results, in submission order, hold consecutive seqs 1..total with no gap or overlap. */
function assertConsecutive(results: CommitResult[], sizes: number[]): bigint {
  let next = 1n;
  for (const [i, r] of results.entries()) {
    assert.equal(r.firstSeq, next, `request ${i} starts right after request ${i - 1}`);
    assert.equal(r.lastSeq - r.firstSeq + 1n, BigInt(sizes[i]), `request ${i} gets one seq per write`);
    next = r.lastSeq + 1n;
  }
  return next - 1n;
}

/** The events, one line per group (a durable append shown as `append(durable)`): what a group must look like, in order. */
const groupsOf = (events: Event[]) =>
  events
    .map((e) => (e.kind === 'append' && e.durable ? 'append(durable)' : e.kind))
    .join(' ')
    .replaceAll(' append', '\nappend')
    .split('\n');
/** A group made durable exactly once before its batch: one durable (O_DSYNC) write, or a write then one fdatasync. */
const DURABLE_GROUP = /^(append\(durable\)|append fdatasync) batch$/;

describe('group commit', () => {
  it('50 concurrent requests are committed in far fewer groups (one log append and one LevelDB batch each), with consecutive gap-free seqs', async () => {
    const m = await openMaster({ sync: false });
    const N = 50;
    const sizes = Array.from({ length: N }, (_, i) => writesOf(i).length);
    // All 50 are submitted in the same tick, before any group's write can finish.
    const results = await Promise.all(Array.from({ length: N }, (_, i) => m.committer.submit(writesOf(i), 64)));
    const total = assertConsecutive(results, sizes);
    assert.equal(total, BigInt(sizes.reduce((a, b) => a + b, 0)));
    assert.equal(m.wal.lastSeq, total);

    // The first request starts a group on its own (nothing else is queued yet); every
    // other one queues behind that group's writes and goes into the next group. One group
    // per request (50) would mean no group commit at all.
    const appends = m.appends();
    const batches = m.batches();
    assert.ok(appends.length >= 1 && appends.length <= 2, `50 concurrent requests took ${appends.length} log appends`);
    // Each group: its records appended to the log first, then its data and position in one LevelDB batch.
    assert.deepEqual(groupsOf(m.events), appends.map(() => 'append batch'));
    // The appends hold the seqs in order, each group's batch the same writes and that group's end as its position.
    assert.deepEqual(appends.flatMap((a) => a.seqs), Array.from({ length: Number(total) }, (_, i) => BigInt(i + 1)));
    for (const [i, b] of batches.entries()) {
      assert.equal(b.dataOps, appends[i].seqs.length, `group ${i}: one data put per write`);
      assert.equal(b.positionSeq, appends[i].seqs.at(-1), `group ${i}: the batch records the group's last seq`);
      assert.equal(b.logOps, 0, 'no log key in LevelDB');
    }
    // The appends are what is on disk: one segment, its header and exactly the appended records.
    const names = fs.readdirSync(logDir(m.dir)).filter((n) => firstSeqOfName(n) !== undefined);
    assert.equal(names.length, 1);
    const file = fs.readFileSync(path.join(logDir(m.dir), names[0]));
    assert.equal(file.length, HEADER_BYTES + appends.reduce((n, a) => n + a.bytes, 0));
    const header = decodeHeader(file);
    assert.ok(typeof header !== 'string', String(header));
    const scan = scanSegment(file, header);
    assert.equal(scan.bad, undefined);
    assert.equal(scan.last.seq, total);
    assert.equal(scan.goodBytes, file.length);
    assert.deepEqual(await m.store.db.keys({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END }).all(), [], 'the LevelDB store holds no log');
    assert.equal((await m.store.db.get(dataKey(0, Buffer.from(`k${N - 1}-0`))))?.toString(), `v${N - 1}-0`);
    await m.close();
  });

  it('a group stops at maxGroupEntries: more groups, still consecutive seqs', async () => {
    const m = await openMaster({ sync: false, maxGroupEntries: 10 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => m.committer.submit([[put(`k${i}`, 'v')]], 2)));
    assertConsecutive(results, results.map(() => 1));
    // The first alone, then the 49 queued ones in groups of at most 10: 1 + 5.
    const appends = m.appends();
    assert.equal(appends.length, 6, `appends: ${appends.map((a) => a.seqs.length).join(',')}`);
    assert.deepEqual(groupsOf(m.events), appends.map(() => 'append batch'));
    assert.ok(appends.every((a) => a.seqs.length <= 10));
    assert.ok(m.batches().every((b) => b.dataOps <= 10));
    assert.deepEqual(appends.flatMap((a) => a.seqs), Array.from({ length: 50 }, (_, i) => BigInt(i + 1)));
    await m.close();
  });

  it('with sync: true each group\'s log append is made durable once, before its LevelDB batch; with sync: false it is not; LevelDB is never synced', async () => {
    for (const sync of [true, false]) {
      const m = await openMaster({ sync });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => m.committer.submit(writesOf(i), 64)));
      assertConsecutive(results, Array.from({ length: 20 }, (_, i) => writesOf(i).length));
      const appends = m.appends();
      assert.ok(appends.length >= 1 && appends.length <= 2, `20 concurrent requests took ${appends.length} groups`);
      const assertGroups = (groups: string[], count: number) => {
        assert.equal(groups.length, count, groups.join(' | '));
        for (const g of groups) {
          if (sync) assert.match(g, DURABLE_GROUP);
          else assert.equal(g, 'append batch', 'no fdatasync, no durable write');
        }
      };
      assertGroups(groupsOf(m.events), appends.length);
      // The log is the durable record: the data batch is written without fsync either way.
      for (const b of m.batches()) assert.notEqual(b.sync, true, `LevelDB batch write options with sync: ${sync}`);
      // A lone request afterwards is its own group, and is synced the same way.
      const before = m.events.length;
      await m.committer.submit([[put('lone', 'v')]], 5);
      assertGroups(groupsOf(m.events.slice(before)), 1);
      assert.notEqual(m.batches().at(-1)!.sync, true);
      await m.close();
    }
  });
});
