import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { SeqWaiters } from '../common/seq-waiters.js';
import { GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import { LevelStagedEntries, LevelStagedPairs, type ChainedBatch } from './apply-batch.js';
import type { ApplyHooks } from './apply-hooks.js';
import { GenerationClears } from './generation-clears.js';
import { GuardedLevelStore } from './guarded-level-store.js';
import type { ChainPosition, DataSnapshot, SlotRecord, StagedEntries, StagedPairs } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, DATA_GEN_KEY, HISTORY_ID_KEY, u32 } from './layout.js';
import { LevelDataSnapshot } from './level-data-snapshot.js';
import type { ReplicaStoreOptions } from './level-replica-store.js';
import { LevelStoreView } from './level-store-view.js';
import type { Store } from './level-store.js';
import type { SegmentLog } from './segment-log.js';
import { readSlots, slotDel, slotPut } from './slot-records.js';
import type { StoreFaults } from './store-faults.js';

/**
 * A follower's LevelDB store as it stands (level-replica-store.ts adds how it opens and
 * changes): its applied position and active generation as read back from the store, its
 * own log, its reads, and what it serves to chained followers (snapshots, slots).
 *
 * Invariant: appliedSeq is the seq of the newest entry whose data is in the store, and
 * appliedChecksum is that entry's chained checksum.
 */
export abstract class LevelReplicaBase {
  /** Background deletions of whole generations, by generation. */
  protected readonly clearing = new GenerationClears();
  /** Readers waiting for a seq to be applied (read-your-writes); moved after each durable apply or snapshot switch. */
  readonly progress: SeqWaiters;
  /** Every LevelDB write goes through it: after a failed one, nothing is written until a reopen. */
  protected readonly guard: GuardedLevelStore;

  /** Set once by open: the one log object for the store's whole life (a reopen reloads it in place). */
  protected segmentLog: SegmentLog | undefined;

  protected constructor(
    protected readonly db: Store,
    protected readonly opts: ReplicaStoreOptions,
    protected readonly sync: boolean,
    public appliedSeq: bigint,
    public appliedChecksum: number,
    public appliedCommitTimeMs: number,
    public historyId: Buffer,
    /** The generation reads and applies use. Invariant: switched only together with the applied position. */
    public dataGen: number,
    protected readonly hooks: ApplyHooks | undefined,
    protected readonly faults: StoreFaults | undefined,
  ) {
    this.progress = new SeqWaiters(appliedSeq);
    this.guard = new GuardedLevelStore(db, faults);
  }

  /**
   * The follower's own log: entries are appended here (durable with sync) before the store
   * is written; it can be served to chained followers.
   */
  get log(): SegmentLog {
    return this.segmentLog!;
  }

  /** The applied position: the next entry must be seq + 1 and chain from checksum. */
  get position(): ChainPosition {
    return { seq: this.appliedSeq, checksum: this.appliedChecksum, commitTimeMs: this.appliedCommitTimeMs, historyId: this.historyId };
  }

  /**
   * What a trim of the log persists first (as the master's trim hook): the slots given to
   * trimTo, and, before segments go, a synced store write, which makes every earlier store
   * write durable. A synced write must write something: the active generation, unchanged.
   */
  protected async persistTrim(slots: readonly SlotRecord[], deleting: boolean): Promise<void> {
    const ops = slots.map(slotPut);
    if (deleting) ops.push({ type: 'put', key: DATA_GEN_KEY, value: u32(this.dataGen) });
    if (ops.length > 0) await this.guard.write(ops, { sync: deleting }, deleting ? 'sync the store before trimming its log' : 'save replication slots');
  }

  /** A point-in-time snapshot of the active generation with the applied position it reflects. */
  snapshot(): Promise<DataSnapshot> {
    return LevelDataSnapshot.take(this.db);
  }

  loadSlots(): Promise<SlotRecord[]> {
    return readSlots(this.db);
  }

  async saveSlots(slots: readonly SlotRecord[], sync: boolean): Promise<void> {
    if (slots.length > 0) await this.guard.write(slots.map(slotPut), { sync }, 'save replication slots');
  }

  async dropSlot(followerId: number, sync: boolean): Promise<void> {
    await this.guard.write([slotDel(followerId)], { sync }, `drop the replication slot of follower ${followerId}`);
  }

  /** One consistent read of the active generation and the applied seq. */
  view(): LevelStoreView {
    return new LevelStoreView(this.db, 'replica');
  }

  /** Syncs the log first (a role change opens the directory next, and may promote it). */
  async close(): Promise<void> {
    try {
      if (!this.log.failed) await this.log.syncAll();
    } finally {
      await this.log.close();
      await this.db.close();
    }
  }

  /** Reads the applied position and the active generation back from the store. */
  protected async loadPosition(): Promise<void> {
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

  /** The chained batch of something this store staged; INTERNAL for anything else. */
  protected batchOf(staged: StagedEntries | StagedPairs): ChainedBatch {
    if ((staged instanceof LevelStagedEntries || staged instanceof LevelStagedPairs) && staged.batch.db === this.db) return staged.batch;
    throw new ReplicatorError(ErrorCode.INTERNAL, 'staged by another store: refusing to write it');
  }
}
