import { GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { dataRange, metaKey, MetaName } from '../storage/layout.js';
import { latencyTrace } from '../common/latency-trace.js';
import { SeqWaiters } from '../common/seq-waiters.js';
import { reopenSpaceShortfall, u32, u64, writeBatch, writeOptions, type BatchOp, type Store, type StoreSnapshot } from '../storage/level-store.js';
import type { ApplyAudit } from './apply-audit.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, HISTORY_ID_KEY, stageEntries, type ChainPosition, type StagedEntries } from '../storage/apply-batch.js';

const DATA_START = dataRange(0).gte;
const DATA_END = dataRange(0xffff_ffff).lt;
const DATA_GEN_KEY = metaKey(MetaName.DATA_GEN);
const EPOCH_KEY = metaKey(MetaName.EPOCH);

/** Where a completed snapshot leaves the follower. */
export interface SnapshotPosition {
  gen: number;
  seq: bigint;
  checksum: number;
  commitTimeMs: number;
  historyId: Buffer;
  epoch: number;
}

/**
 * Applies log entries to a follower's store. Each call writes the entries' data changes
 * and the new applied position (seq, checksum, history) in one atomic batch, so after any
 * crash the stored position names exactly the data the store holds and the follower
 * resumes from appliedSeq + 1: nothing applied twice, nothing skipped.
 *
 * Invariant: appliedSeq is the seq of the newest entry whose data is in the store, and
 * appliedChecksum is that entry's chained checksum.
 */
export class Applier {
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
    private readonly audit: ApplyAudit | undefined,
  ) {
    this.progress = new SeqWaiters(appliedSeq);
  }

  /**
   * Opens the applier on a follower store and deletes any data generation other than the
   * active one: leftovers of a snapshot that was interrupted (never made active) or of
   * data a completed snapshot replaced.
   */
  static async open(db: Store, { sync, audit }: { sync: boolean; audit?: ApplyAudit }): Promise<Applier> {
    const applier = new Applier(db, sync, 0n, GENESIS_CHECKSUM, 0, Buffer.alloc(0), 0, audit);
    await applier.loadPosition();
    const active = dataRange(applier.dataGen);
    await db.clear({ gte: DATA_START, lt: active.gte });
    await db.clear({ gte: active.lt, lt: DATA_END });
    return applier;
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
   * Every write to the follower's store goes through here (or writeFilledBatch). A failed write (disk full,
   * I/O error) is the follower's own failure, reported as STORE_FAILED naming what was
   * being written, and it leaves the LevelDB handle unusable until ensureWritable().
   */
  async write(ops: BatchOp[], { sync }: { sync: boolean }, what: string): Promise<void> {
    await this.ensureWritable();
    try {
      await writeBatch(this.db, ops, { sync });
    } catch (err) {
      this.mustReopen = true;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A chained batch for the caller to fill and hand to writeFilledBatch (snapshot chunks; commit uses it too). */
  newBatch(): ReturnType<Store['batch']> {
    return this.db.batch();
  }

  /**
   * write() for a chained batch the caller filled, possibly while another write ran:
   * refused (dropped, unwritten) if any write failed since, so nothing goes through a
   * failed handle.
   */
  async writeFilledBatch(batch: ReturnType<Store['batch']>, { sync }: { sync: boolean }, what: string): Promise<void> {
    if (this.mustReopen) {
      await batch.close();
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: another store write failed meanwhile; the store is reopened first`);
    }
    try {
      await batch.write(writeOptions(sync));
    } catch (err) {
      this.mustReopen = true;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
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
      if (this.db.status === 'open') await this.db.close();
      await this.db.open();
    } catch (err) {
      const cause = (err as { cause?: Error }).cause;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot reopen the store after a failed write: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}`, { cause: err });
    }
    await this.loadPosition();
    this.mustReopen = false;
    this.audit?.opened(this.appliedSeq);
  }

  /** Deletes every key of a (non-active) generation; waits for a deletion already under way. */
  async clearGeneration(gen: number): Promise<void> {
    if (gen === this.dataGen) throw new Error(`refusing to clear the active generation ${gen}`);
    await this.clearing.get(gen);
    await this.ensureWritable();
    try {
      await this.db.clear(dataRange(gen));
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
    this.audit?.snapshot(pos.seq);
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
    const { from, to } = staged;
    // A failed write since staging is reported as such by writeFilledBatch, not as disorder.
    if (!this.mustReopen && (from.seq !== this.appliedSeq || from.checksum !== this.appliedChecksum || staged.gen !== this.dataGen)) {
      await staged.batch.close();
      throw new ReplicatorError(
        ErrorCode.INTERNAL,
        `staged seqs ${from.seq + 1n}..${to.seq} do not follow the applied seq ${this.appliedSeq} (generation ${staged.gen}, active ${this.dataGen})`,
      );
    }
    // Nothing of the batch is applied if this fails: the position stays, the seqs are retried.
    await this.writeFilledBatch(staged.batch, { sync: this.sync }, `apply seqs ${from.seq + 1n}..${to.seq}`);
    latencyTrace?.record(to.seq);
    this.appliedSeq = to.seq;
    this.appliedChecksum = to.checksum;
    this.appliedCommitTimeMs = to.commitTimeMs;
    this.historyId = to.historyId;
    this.progress.advance(to.seq);
    this.audit?.applied(from.seq + 1n, to.seq);
  }

  /** Drops a staged batch that will not be committed. */
  async discard(staged: StagedEntries): Promise<void> {
    await staged.batch.close();
  }
}

/** A follower's applied seq as seen by a snapshot. */
export async function appliedSeqAt(db: Store, snapshot: StoreSnapshot): Promise<bigint> {
  const v = await db.get(APPLIED_SEQ_KEY, { snapshot });
  return v ? v.readBigUInt64BE() : 0n;
}

/** A follower's active data generation as seen by a snapshot. */
export async function dataGenAt(db: Store, snapshot: StoreSnapshot): Promise<number> {
  const v = await db.get(DATA_GEN_KEY, { snapshot });
  return v ? v.readUInt32BE() : 0;
}
