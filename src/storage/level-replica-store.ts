import { GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { latencyTrace } from '../common/latency-trace.js';
import { SeqWaiters } from '../common/seq-waiters.js';
import {
  LevelStagedEntries,
  LevelStagedPairs,
  stageEntries,
  stagePairs,
  type ChainedBatch,
} from './apply-batch.js';
import type { ApplyHooks } from './apply-hooks.js';
import type { ChainPosition, ReplicaStore, SnapshotPosition, StagedEntries, StagedPairs } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, dataRange, HISTORY_ID_KEY, metaKey, MetaName, u32, u64 } from './layout.js';
import { LevelStoreView } from './level-store-view.js';
import { openStore, reopenSpaceShortfall, writeBatch, writeOptions, type BatchOp, type Store } from './level-store.js';
import type { StoreFaults } from './store-faults.js';

const DATA_START = dataRange(0).gte;
const DATA_END = dataRange(0xffff_ffff).lt;
const DATA_GEN_KEY = metaKey(MetaName.DATA_GEN);
const EPOCH_KEY = metaKey(MetaName.EPOCH);

export interface ReplicaStoreOptions {
  /** Create the store if the data directory holds none (else STORE_NOT_FOUND). */
  create: boolean;
  /** Fsync each applied batch before the position moves (--sync). */
  sync: boolean;
  /** Told of every open, applied range and snapshot switch (the follower's audit). */
  hooks?: ApplyHooks;
  /** Failure injection for tests only (see store-faults.ts); production never sets it. */
  faults?: StoreFaults;
}

/**
 * Opens (or creates) the replica store of a data directory, reads its applied position
 * back, deletes leftover data generations, and tells hooks.opened where it is.
 */
export function openReplicaStore(dataDir: string, opts: ReplicaStoreOptions): Promise<LevelReplicaStore> {
  return LevelReplicaStore.open(dataDir, opts);
}

/**
 * A follower's LevelDB store. Each apply writes the entries' data changes and the new
 * applied position (seq, checksum, history) in one atomic batch, so after any crash the
 * stored position names exactly the data the store holds and the follower resumes from
 * appliedSeq + 1: nothing applied twice, nothing skipped.
 *
 * Invariant: appliedSeq is the seq of the newest entry whose data is in the store, and
 * appliedChecksum is that entry's chained checksum.
 */
export class LevelReplicaStore implements ReplicaStore {
  /** Background deletions of whole generations, by generation. */
  private readonly clearing = new Map<number, Promise<void>>();
  /** Readers waiting for a seq to be applied (read-your-writes); moved after each durable apply or snapshot switch. */
  readonly progress: SeqWaiters;
  /** Set when a write failed: this LevelDB handle must not write again until reopened. */
  private mustReopen = false;
  /** The reopen under way, if any (the subscriber and a background clear may both ask). */
  private reopening: Promise<void> | undefined;

  private constructor(
    private readonly db: Store,
    private readonly sync: boolean,
    public appliedSeq: bigint,
    public appliedChecksum: number,
    public appliedCommitTimeMs: number,
    public historyId: Buffer,
    /** The generation reads and applies use. Invariant: switched only together with the applied position. */
    public dataGen: number,
    private readonly hooks: ApplyHooks | undefined,
    private readonly faults: StoreFaults | undefined,
  ) {
    this.progress = new SeqWaiters(appliedSeq);
  }

  /**
   * See openReplicaStore. Any data generation other than the active one is deleted:
   * leftovers of a snapshot that was interrupted (never made active) or of data a
   * completed snapshot replaced.
   */
  static async open(dataDir: string, { create, sync, hooks, faults }: ReplicaStoreOptions): Promise<LevelReplicaStore> {
    const db = await openStore(dataDir, { create });
    try {
      const store = new LevelReplicaStore(db, sync, 0n, GENESIS_CHECKSUM, 0, Buffer.alloc(0), 0, hooks, faults);
      await store.loadPosition();
      const active = dataRange(store.dataGen);
      await store.clearRange({ gte: DATA_START, lt: active.gte });
      await store.clearRange({ gte: active.lt, lt: DATA_END });
      hooks?.opened(store.appliedSeq);
      return store;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  /** One consistent read of the active generation and the applied seq. */
  view(): LevelStoreView {
    return new LevelStoreView(this.db, 'replica');
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** Reads the applied position and the active generation back from the store. */
  private async loadPosition(): Promise<void> {
    const [seq, checksum, commitTime, historyId, gen] = await this.db.getMany([
      APPLIED_SEQ_KEY,
      APPLIED_CHECKSUM_KEY,
      APPLIED_COMMIT_TIME_KEY,
      HISTORY_ID_KEY,
      DATA_GEN_KEY,
    ]);
    this.appliedSeq = seq ? seq.readBigUInt64BE() : 0n;
    this.appliedChecksum = checksum ? checksum.readUInt32BE() : GENESIS_CHECKSUM;
    this.appliedCommitTimeMs = commitTime ? Number(commitTime.readBigUInt64BE()) : 0;
    this.historyId = historyId ?? Buffer.alloc(0);
    this.dataGen = gen ? gen.readUInt32BE() : 0;
    // Readers waiting for a seq follow the stored position (a reopen never finds it behind).
    if (this.appliedSeq >= this.progress.position) this.progress.advance(this.appliedSeq);
    else this.progress.reset(this.appliedSeq);
  }

  /**
   * Every write to the store goes through here or writeFilledBatch (clears through
   * clearGeneration). A failed write (disk full, I/O error) is the follower's own failure,
   * reported as STORE_FAILED naming what was being written, and it leaves the LevelDB
   * handle unusable until ensureWritable().
   */
  private async write(ops: BatchOp[], { sync }: { sync: boolean }, what: string): Promise<void> {
    await this.ensureWritable();
    try {
      this.faults?.before('write');
      await writeBatch(this.db, ops, { sync });
      this.faults?.after('write');
    } catch (err) {
      this.mustReopen = true;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * write() for a chained batch filled by staging, possibly while another write ran:
   * refused (dropped, unwritten) if any write failed since, so nothing goes through a
   * failed handle.
   */
  private async writeFilledBatch(batch: ChainedBatch, sync: boolean, what: string): Promise<void> {
    if (this.mustReopen) {
      await batch.close();
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: another store write failed meanwhile; the store is reopened first`);
    }
    try {
      this.faults?.before('write');
      await batch.write(writeOptions(sync));
      this.faults?.after('write');
    } catch (err) {
      this.mustReopen = true;
      await batch.close(); // a batch refused before its write is released (after one, a no-op)
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** One LevelDB range deletion (callers handle failures). */
  private async clearRange(range: { gte: Buffer; lt: Buffer }): Promise<void> {
    this.faults?.before('clear');
    await this.db.clear(range);
    this.faults?.after('clear');
  }

  /** The chained batch of something this store staged; INTERNAL for anything else. */
  private batchOf(staged: StagedEntries | StagedPairs): ChainedBatch {
    if ((staged instanceof LevelStagedEntries || staged instanceof LevelStagedPairs) && staged.batch.db === this.db) return staged.batch;
    throw new ReplicatorError(ErrorCode.INTERNAL, 'staged by another store: refusing to write it');
  }

  /**
   * Makes the store writable again after a failed write. LevelDB cannot be trusted to
   * write on after a failure: a record that failed half way (ENOSPC) stays torn in its
   * write-ahead log, and records written after it are misframed and dropped when the log
   * is replayed on the next open — applied seqs silently lost after they were reported.
   * So the store is closed and reopened (recovery reads what is really on disk) and the
   * position is read back before anything else is written. Throws STORE_FAILED while that
   * is impossible (the disk is still full); the subscriber retries with backoff. Until
   * there is room to reopen, the store stays open for reads.
   */
  async ensureWritable(): Promise<void> {
    if (!this.mustReopen) return;
    this.reopening ??= this.reopen().finally(() => (this.reopening = undefined));
    await this.reopening;
  }

  private async reopen(): Promise<void> {
    const short = await reopenSpaceShortfall(this.db);
    if (short) {
      throw new ReplicatorError(
        ErrorCode.STORE_FAILED,
        `the store is still out of space after a failed write: ${short.free} bytes free in ${this.db.location}, reopening it needs about ${short.needed}; still serving reads`,
      );
    }
    try {
      if (this.db.status === 'open') {
        this.faults?.before('close');
        await this.db.close();
        this.faults?.after('close');
      }
      this.faults?.before('open');
      await this.db.open();
      this.faults?.after('open');
    } catch (err) {
      const cause = (err as { cause?: Error }).cause;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot reopen the store after a failed write: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}`, { cause: err });
    }
    await this.loadPosition();
    this.mustReopen = false;
    this.hooks?.opened(this.appliedSeq);
  }

  /** Deletes every key of a (non-active) generation; waits for a deletion already under way. */
  async clearGeneration(gen: number): Promise<void> {
    if (gen === this.dataGen) throw new Error(`refusing to clear the active generation ${gen}`);
    await this.clearing.get(gen);
    await this.ensureWritable();
    try {
      await this.clearRange(dataRange(gen));
    } catch (err) {
      this.mustReopen = true;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot clear data generation ${gen}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** clearGeneration in the background; a later clearGeneration(gen) waits for it. */
  clearGenerationLater(gen: number, onError: (err: unknown) => void): void {
    const p = this.clearGeneration(gen)
      .catch(onError)
      .finally(() => {
        if (this.clearing.get(gen) === p) this.clearing.delete(gen);
      });
    this.clearing.set(gen, p);
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
    return this.writeFilledBatch(this.batchOf(staged), false, what);
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
    await this.write(
      [
        { type: 'put', key: DATA_GEN_KEY, value: u32(pos.gen) },
        { type: 'put', key: APPLIED_SEQ_KEY, value: u64(pos.seq) },
        { type: 'put', key: APPLIED_CHECKSUM_KEY, value: u32(pos.checksum) },
        { type: 'put', key: APPLIED_COMMIT_TIME_KEY, value: u64(BigInt(pos.commitTimeMs)) },
        { type: 'put', key: HISTORY_ID_KEY, value: pos.historyId },
        { type: 'put', key: EPOCH_KEY, value: u32(pos.epoch) },
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
    // A snapshot of another history may put the follower at a lower seq than before.
    if (pos.seq >= this.progress.position) this.progress.advance(pos.seq);
    else this.progress.reset(pos.seq);
    this.hooks?.snapshot(pos.seq);
    return old;
  }

  /** The applied position: the next entry must be seq + 1 and chain from checksum. */
  get position(): ChainPosition {
    return { seq: this.appliedSeq, checksum: this.appliedChecksum, commitTimeMs: this.appliedCommitTimeMs, historyId: this.historyId };
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
    // A failed write since staging is reported as such by writeFilledBatch, not as disorder.
    if (!this.mustReopen && (from.seq !== this.appliedSeq || from.checksum !== this.appliedChecksum || staged.gen !== this.dataGen)) {
      await batch.close();
      throw new ReplicatorError(
        ErrorCode.INTERNAL,
        `staged seqs ${from.seq + 1n}..${to.seq} do not follow the applied seq ${this.appliedSeq} (generation ${staged.gen}, active ${this.dataGen})`,
      );
    }
    // Nothing of the batch is applied if this fails: the position stays, the seqs are retried.
    await this.writeFilledBatch(batch, this.sync, `apply seqs ${from.seq + 1n}..${to.seq}`);
    latencyTrace?.record(to.seq);
    this.appliedSeq = to.seq;
    this.appliedChecksum = to.checksum;
    this.appliedCommitTimeMs = to.commitTimeMs;
    this.historyId = to.historyId;
    this.progress.advance(to.seq);
    this.hooks?.applied(from.seq + 1n, to.seq);
  }

  /** Drops a staged batch that will not be committed. */
  async discard(staged: StagedEntries): Promise<void> {
    await this.batchOf(staged).close();
  }
}
