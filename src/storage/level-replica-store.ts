import { GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { latencyTrace } from '../common/latency-trace.js';
import type { Logger } from '../common/logger.js';
import { LevelStagedEntries, stageEntries, stagePairs } from './apply-batch.js';
import type { ApplyHooks } from './apply-hooks.js';
import type { ChainPosition, ReplicaStore, SnapshotPosition, StagedEntries, StagedPairs } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, DATA_GEN_KEY, dataRange, HISTORY_ID_KEY, otherGenerations, u32, u64 } from './layout.js';
import { logDir } from './level-master-store.js';
import { LevelReplicaBase } from './level-replica-base.js';
import { openStore } from './level-store.js';
import { FsLogFiles, type LogFiles } from './log-files.js';
import { reconcileReplica } from './replica-recovery.js';
import { appendApplied, openReplicaLog, replicaLogInit, trimReplicaLog } from './replica-log.js';
import type { StoreFaults } from './store-faults.js';

export interface ReplicaStoreOptions {
  /** Create the store if the data directory holds none (else STORE_NOT_FOUND). */
  create: boolean;
  /** Fsync each applied batch before the position moves (--sync). */
  sync: boolean;
  /** Told of every open, applied range and snapshot switch (the follower's audit). */
  hooks?: ApplyHooks;
  /** Failure injection for tests only (see store-faults.ts); production never sets it. */
  faults?: StoreFaults;
  /** The follower's own log keeps at least the newest this many entries (whole segments go). */
  retainEntries?: bigint;
  maxSegmentBytes?: number;
  /** The log's files (tests put a power-loss model here); default: <dataDir>/log. */
  logFiles?: LogFiles;
  log?: Logger;
}


/**
 * Opens (or creates) the replica store of a data directory, reads its applied position
 * back, deletes leftover data generations, and tells hooks.opened where it is.
 */
export function openReplicaStore(dataDir: string, opts: ReplicaStoreOptions): Promise<LevelReplicaStore> {
  return LevelReplicaStore.open(dataDir, opts);
}

/**
 * A follower's LevelDB store (its state, reads and serving: level-replica-base.ts). Each apply writes the entries' data changes and the new
 * applied position (seq, checksum, history) in one atomic batch, so after any crash the
 * stored position names exactly the data the store holds and the follower resumes from
 * appliedSeq + 1: nothing applied twice, nothing skipped.
 *
 * Invariant: appliedSeq is the seq of the newest entry whose data is in the store, and
 * appliedChecksum is that entry's chained checksum.
 */
export class LevelReplicaStore extends LevelReplicaBase implements ReplicaStore {
  /**
   * See openReplicaStore. Any data generation other than the active one is deleted:
   * leftovers of a snapshot that was interrupted (never made active) or of data a
   * completed snapshot replaced.
   */
  static async open(dataDir: string, opts: ReplicaStoreOptions): Promise<LevelReplicaStore> {
    const { create, sync, hooks, faults } = opts;
    const db = await openStore(dataDir, { create });
    const withFiles = { ...opts, logFiles: opts.logFiles ?? new FsLogFiles(logDir(dataDir)) };
    const store = new LevelReplicaStore(db, withFiles, sync, 0n, GENESIS_CHECKSUM, 0, Buffer.alloc(0), 0, hooks, faults);
    try {
      await store.loadPosition();
      const opened = await store.openLog();
      for (const range of otherGenerations(store.dataGen)) await store.guard.clearRange(range);
      store.reportOpen(opened);
      return store;
    } catch (err) {
      await store.segmentLog?.close().catch(() => undefined);
      await db.close();
      throw err;
    }
  }

  /**
   * Tells the hooks where the store was when opened and, when the open re-applied entries
   * from the log, that those were applied: the audit sees exactly what happened.
   */
  private reportOpen(openedAt: bigint): void {
    this.hooks?.opened(openedAt);
    if (this.appliedSeq > openedAt) this.hooks?.applied(openedAt + 1n, this.appliedSeq);
  }

  /**
   * Opens (or reopens, in place) the log and brings store and log into agreement (see
   * reconcileReplica). Returns the store's seq before any replay.
   */
  private async openLog(): Promise<bigint> {
    const openedAt = this.appliedSeq;
    if (this.segmentLog) await this.segmentLog.reopen({ log: this.opts.log, init: replicaLogInit(this.position) });
    else this.segmentLog = await openReplicaLog(this.opts, this.position, (slots, deleting) => this.persistTrim(slots, deleting));
    await reconcileReplica(this.db, this.segmentLog, this.dataGen, this.position, this.opts.log);
    await this.loadPosition(); // replayed entries, or the history id the log gave the store
    return openedAt;
  }

  /**
   * Makes the store writable again after a failed write (see GuardedLevelStore): LevelDB is
   * reopened, then the position is read back and the log reopened and reconciled, before
   * anything else is written.
   */
  ensureWritable(): Promise<void> {
    return this.guard.ensureWritable(async () => {
      await this.loadPosition();
      const openedAt = await this.openLog();
      return () => this.reportOpen(openedAt);
    });
  }

  /** Deletes every key of a (non-active) generation; waits for a deletion already under way. */
  async clearGeneration(gen: number): Promise<void> {
    if (gen === this.dataGen) throw new Error(`refusing to clear the active generation ${gen}`);
    await this.clearing.settled(gen);
    await this.ensureWritable();
    try {
      await this.guard.clearRange(dataRange(gen));
    } catch (err) {
      this.guard.markFailed();
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot clear data generation ${gen}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** clearGeneration in the background; a later clearGeneration(gen) waits for it. */
  clearGenerationLater(gen: number, onError: (err: unknown) => void): void {
    this.clearing.start(gen, () => this.clearGeneration(gen), onError);
  }

  /**
   * Stages a snapshot's pairs into generation gen, which must not be the active one
   * (nothing reads it until switchToSnapshot). Synchronous, so the caller can prepare the
   * next chunk while the previous one is written.
   */
  stagePairs(gen: number, pairs: readonly { key: Buffer; value: Buffer }[]): StagedPairs {
    if (gen === this.dataGen) throw new ReplicatorError(ErrorCode.INTERNAL, `refusing to stage snapshot pairs into the active generation ${gen}`);
    return stagePairs(this.db, gen, pairs);
  }

  /**
   * Writes staged pairs, not synced: nothing points at their generation until
   * switchToSnapshot, whose synced write makes every earlier write durable too. Refused
   * (dropped, unwritten) once any store write has failed since the last reopen.
   */
  writePairs(staged: StagedPairs, what: string): Promise<void> {
    return this.guard.writeFilledBatch(this.batchOf(staged), false, what);
  }

  async discardPairs(staged: StagedPairs): Promise<void> {
    await this.batchOf(staged).close();
  }

  /**
   * Makes a fully received snapshot the follower's data, in one durable batch: the new
   * generation and the position it corresponds to. Before this batch, reads and a
   * restarted follower see the old data and old position; after it, the new ones. Never a mix.
   */
  async switchToSnapshot(pos: SnapshotPosition): Promise<number> {
    await this.ensureWritable(); // the active generation is read back too (see apply)
    const old = this.dataGen;
    await this.guard.write(
      [
        { type: 'put', key: DATA_GEN_KEY, value: u32(pos.gen) },
        { type: 'put', key: APPLIED_SEQ_KEY, value: u64(pos.seq) },
        { type: 'put', key: APPLIED_CHECKSUM_KEY, value: u32(pos.checksum) },
        { type: 'put', key: APPLIED_COMMIT_TIME_KEY, value: u64(BigInt(pos.commitTimeMs)) },
        { type: 'put', key: HISTORY_ID_KEY, value: pos.historyId },
      ],
      // Always durable: LevelDB persists earlier unsynced writes (the staged pairs) before a synced one.
      { sync: true },
      `switch to the snapshot at seq ${pos.seq}`,
    );
    this.dataGen = pos.gen;
    this.appliedSeq = pos.seq;
    this.appliedChecksum = pos.checksum;
    this.appliedCommitTimeMs = pos.commitTimeMs;
    this.historyId = pos.historyId;
    // The log restarts at the snapshot's position (a crash before this is handled at open:
    // the log does not hold the store's position, so it restarts there).
    try {
      await this.log.reset({ seq: pos.seq, checksum: pos.checksum, commitTimeMs: pos.commitTimeMs }, pos.historyId);
    } catch (err) {
      this.guard.markFailed();
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot restart the log at the snapshot's seq ${pos.seq}: ${(err as Error).message}`, { cause: err });
    }
    // A snapshot of another history may put the follower at a lower seq than before.
    if (pos.seq >= this.progress.position) this.progress.advance(pos.seq);
    else this.progress.reset(pos.seq);
    this.hooks?.snapshot(pos.seq);
    return old;
  }

  /**
   * Verifies and applies consecutive entries of history historyId. Refuses (and writes
   * nothing) unless the first entry is exactly appliedSeq + 1, every entry follows the
   * one before, and every checksum chains from the previous one.
   */
  async apply(entries: readonly Buffer[], historyId: Buffer): Promise<void> {
    if (entries.length === 0) return;
    // After a failed write the position in memory may be stale (the batch may have reached
    // the disk): reopen and read it back BEFORE checking seqs against it, or a batch that
    // did land would be applied twice.
    await this.ensureWritable();
    await this.commit(await this.stage(entries, historyId));
  }

  /**
   * apply() in two steps, so the next batch can be verified and staged on the main thread
   * while the previous one is written: stage() checks entries as following `from` (the
   * applied position, or the `to` of a batch staged and not yet committed) and writes
   * nothing; commit() writes. Call ensureWritable() before staging with no write in flight.
   */
  stage(entries: readonly Buffer[], historyId: Buffer, from: ChainPosition = this.position): Promise<StagedEntries> {
    return stageEntries(this.db, this.dataGen, entries, historyId, from);
  }

  /**
   * Writes staged entries; the applied position moves only once they are durable.
   * Invariant: staged batches are committed one at a time, in order, each starting right
   * after appliedSeq, into the active generation, through a handle no write has failed on.
   * Anything else is refused and the batch dropped (nothing written, the position stays).
   */
  async commit(staged: StagedEntries): Promise<void> {
    const batch = this.batchOf(staged);
    const { from, to } = staged;
    // A failed write since staging is reported as such by guard.writeFilledBatch, not as disorder.
    if (!this.guard.failed && (from.seq !== this.appliedSeq || from.checksum !== this.appliedChecksum || staged.gen !== this.dataGen)) {
      await batch.close();
      throw new ReplicatorError(
        ErrorCode.INTERNAL,
        `staged seqs ${from.seq + 1n}..${to.seq} do not follow the applied seq ${this.appliedSeq} (generation ${staged.gen}, active ${this.dataGen})`,
      );
    }
    const what = `apply seqs ${from.seq + 1n}..${to.seq}`;
    const { entries } = staged as LevelStagedEntries;
    // The log append (fdatasynced when the follower syncs: what makes its acknowledgement
    // durable) and the store write (not synced) run at once: two thread-pool round trips
    // in parallel instead of one after the other, which is the lag between the master's
    // commit and this apply. Either order of landing is safe for a replica: a store behind
    // its log is replayed at open, a store ahead of its log restarts the log at the
    // store's position (reconcileReplica); and nothing is acknowledged before both are done.
    const [appended, written] = await Promise.allSettled([
      this.guard.failed ? Promise.resolve() : appendApplied(this.log, from, to, entries, this.sync, this.faults),
      this.guard.writeFilledBatch(batch, false, what),
    ]);
    if (appended.status === 'rejected') {
      this.guard.markFailed();
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: the store write failed: ${(appended.reason as Error).message}`, { cause: appended.reason });
    }
    // Nothing of the batch is reported applied if either failed: the position is read back
    // from the store at the reopen, and the seqs after it are retried.
    if (written.status === 'rejected') throw written.reason;
    this.log.publish(from.seq + 1n, entries, { seq: to.seq, checksum: to.checksum, commitTimeMs: to.commitTimeMs });
    latencyTrace?.record(to.seq);
    this.appliedSeq = to.seq;
    this.appliedChecksum = to.checksum;
    this.appliedCommitTimeMs = to.commitTimeMs;
    this.historyId = to.historyId;
    this.progress.advance(to.seq);
    this.hooks?.applied(from.seq + 1n, to.seq);
    await trimReplicaLog(this.log, this.appliedSeq, this.opts.retainEntries);
  }

  /** Drops a staged batch that will not be committed. */
  async discard(staged: StagedEntries): Promise<void> {
    await this.batchOf(staged).close();
  }
}
