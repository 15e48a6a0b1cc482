import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { chainsFrom, entryChecksum, entrySeq, MutationKind } from '../../src/wire/entry-codec.js';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import type { ReplicationLog } from '../../src/storage/interfaces.js';
import { dataKey, MASTER_DATA_GEN } from '../../src/storage/layout.js';
import { logDir, openMasterStore } from '../../src/storage/level-master-store.js';
import { FsLogFiles } from '../../src/storage/log-files.js';
import { firstSeqOfName } from '../../src/storage/segment-format.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { GroupCommitter } from '../../src/master/group-commit.js';
import { LogRetention, type RetentionPolicy } from '../../src/master/log-retention.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
const POLICY: RetentionPolicy = {
  retainEntries: 10n,
  retainAgeMs: 0,
  retainBytes: 0,
  slotMaxLagEntries: 10_000_000n,
  slotMaxLagBytes: 0,
  trimIntervalMs: 1_000,
};
/** Entries per request (each request is committed as its own group). */
const GROUP = 100;
/** Entries in the log to trim. */
const ENTRIES = 200_000;
/** Segment files of 64 KiB (the smallest --log-segment-bytes): the log to trim spans well over a hundred. */
const SEGMENT_BYTES = 64 * 1024;

/** A trim step: one segment file deleted, recorded once it is gone. */
type Event = { kind: 'segment deleted'; name: string; bytes: number } | { kind: 'commit' } | { kind: 'trim done' };

/** The log's real files, with every segment deletion recorded in `events` when it completes. */
class RecordingLogFiles extends FsLogFiles {
  readonly events: Event[] = [];

  override async remove(name: string): Promise<void> {
    const bytes = firstSeqOfName(name) === undefined ? 0 : fs.statSync(path.join(this.dir, name)).size;
    await super.remove(name);
    if (firstSeqOfName(name) !== undefined) this.events.push({ kind: 'segment deleted', name, bytes });
  }
}

/** The segment files on disk, oldest first, with the last seq each holds (the newest: the log's). */
function segmentsOf(dir: string, lastSeq: bigint): { name: string; last: bigint }[] {
  const names = fs.readdirSync(dir).filter((n) => firstSeqOfName(n) !== undefined).sort();
  return names.map((name, i) => ({ name, last: i + 1 < names.length ? firstSeqOfName(names[i + 1])! - 1n : lastSeq }));
}

/**
 * "Trimming ... does not stall writes" (README, Log retention): a pass that has a long log
 * to delete moves firstSeq at once and then deletes whole segment files one at a time,
 * yielding between them, so writes submitted meanwhile commit while the trim goes on, not
 * after it.
 *
 * Every segment deletion and every write's commit is recorded, as it completes, in one
 * event list. A trim that held writes back (a lock shared with the committer, deletions
 * done without yielding, a long synchronous step) shows the commits only after its
 * deletions, not between them.
 */
describe('log trimming runs beside writes', () => {
  it('a long trim deletes whole segments one at a time, and writes submitted meanwhile commit between them', { timeout: 120_000 }, async (t) => {
    const dir = path.join(tempDir(), 'm');
    const files = new RecordingLogFiles(logDir(dir));
    const store = await openMasterStore(dir, { create: true, maxSegmentBytes: SEGMENT_BYTES, logFiles: files });
    const { log: wal } = store;
    const committer = new GroupCommitter(store, { sync: false, maxGroupEntries: 10_000, maxGroupBytes: 1 << 24 }, log, () => {});
    for (let r = 0; r < ENTRIES / GROUP; r++) {
      await committer.submit(
        Array.from({ length: GROUP }, (_, i) => [{ kind: MutationKind.PUT, key: Buffer.from(`old-${r}-${i}`), value: Buffer.from('v'.repeat(20)) }]),
        GROUP * 30,
      );
    }
    assert.equal(wal.lastSeq, BigInt(ENTRIES));
    const lastBefore = wal.lastSeq;
    const newFirst = lastBefore - POLICY.retainEntries + 1n;
    const segmentsBefore = segmentsOf(logDir(dir), lastBefore);
    const baseChecksum = await wal.checksumAt(newFirst - 1n);

    const events = files.events;
    let trimDone = false;
    const trim = new LogRetention(store, new FollowerRegistry(), POLICY, log).runOnce().then(() => {
      events.push({ kind: 'trim done' });
      trimDone = true;
    });
    // One writer, one write at a time, for as long as the trim runs.
    const written: string[] = [];
    for (let n = 0; !trimDone; n++) {
      const key = `new-${n}`;
      await committer.submit([[{ kind: MutationKind.PUT, key: Buffer.from(key), value: Buffer.from('w') }]], key.length + 1);
      events.push({ kind: 'commit' });
      written.push(key);
    }
    await trim;

    // The pass trimmed what it set out to, exactly: everything but the newest 10 of the entries it saw.
    assert.equal(wal.firstSeq, newFirst);
    await assert.rejects(wal.read(newFirst - 1n, 1, Infinity), (e) => isReplicatorError(e, ErrorCode.LOG_TRIMMED));
    assert.equal(await wal.checksumAt(newFirst - 1n), baseChecksum, 'the checksum of the last trimmed entry is still known');
    // It deleted exactly the segments wholly below the new first seq, each in a step of its own.
    const deletions = events.filter((e) => e.kind === 'segment deleted');
    const doomed = segmentsBefore.filter((s) => s.last < newFirst).map((s) => s.name);
    assert.deepEqual(deletions.map((d) => d.name), doomed, 'whole segments below the cut, oldest first');
    assert.ok(doomed.length >= 100, `the log to trim spans ${doomed.length} segments`);
    for (const d of deletions) assert.ok(d.bytes > 0 && d.bytes <= SEGMENT_BYTES, `a step deleted a segment of ${d.bytes} bytes`);
    assert.ok(fs.existsSync(path.join(logDir(dir), segmentsBefore.find((s) => s.last >= newFirst)!.name)), 'the segment holding the new first seq stays');

    // Writes committed while the trim ran, spread over it: none waited out a long run of deletions.
    const first = events.findIndex((e) => e.kind === 'segment deleted');
    const done = events.findIndex((e) => e.kind === 'trim done');
    let during = 0;
    let run = 0;
    let longestRun = 0;
    let gapsWithCommit = 0;
    for (let i = first; i < done; i++) {
      if (events[i].kind === 'segment deleted') {
        run++;
        longestRun = Math.max(longestRun, run);
      } else {
        during++;
        if (run > 0) gapsWithCommit++;
        run = 0;
      }
    }
    const summary = `${deletions.length} segments deleted, ${during} commits during the deletions, ${gapsWithCommit} gaps between deletions with a commit, longest run of deletions with no commit between them ${longestRun}`;
    t.diagnostic(summary);
    assert.ok(during >= 50 && during >= deletions.length / 4, `writes kept committing while the trim ran: ${summary}`);
    assert.ok(gapsWithCommit >= 50 && gapsWithCommit >= deletions.length / 4, `commits were spread over the trim: ${summary}`);
    assert.ok(longestRun <= Math.max(10, deletions.length / 10), `no write waited out a long stretch of the trim: ${summary}`);

    // The writes are all there, and the log is whole, chained from its base, also after a restart.
    for (const key of written) assert.equal((await store.db.get(dataKey(MASTER_DATA_GEN, Buffer.from(key))))?.toString(), 'w');
    assert.equal(wal.lastSeq, lastBefore + BigInt(written.length));
    await assertChains(wal, baseChecksum!);
    await committer.close();
    await store.close();
    const again = await openMasterStore(dir, { create: false, maxSegmentBytes: SEGMENT_BYTES });
    assert.equal(again.log.firstSeq, newFirst);
    assert.equal(again.log.lastSeq, lastBefore + BigInt(written.length));
    await assertChains(again.log, baseChecksum!);
    await again.close();
  });
});

/** Every entry from firstSeq to lastSeq is there, in order, chained from the base's checksum. */
async function assertChains(wal: ReplicationLog, base: number): Promise<void> {
  let prev = base;
  for (let seq = wal.firstSeq; seq <= wal.lastSeq; ) {
    const got = await wal.read(seq, 10_000, 1 << 20);
    for (const e of got) {
      assert.equal(entrySeq(e), seq);
      assert.ok(chainsFrom(e, prev), `seq ${seq} chains`);
      prev = entryChecksum(e);
      seq++;
    }
  }
  assert.equal(prev, wal.lastChecksum);
}
