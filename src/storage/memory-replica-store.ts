import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { SeqWaiters } from '../common/seq-waiters.js';
import { GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import type { ChainPosition, DataSnapshot, ReplicaStore, SlotRecord, SnapshotPosition, StagedEntries, StagedPairs, StoreView } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, DATA_GEN_KEY, dataKey, dataRange, HISTORY_ID_KEY, u32, u64 } from './layout.js';
import { MemoryDataSnapshot } from './memory-data-snapshot.js';
import type { BatchOp, DiskHandle, DiskSnapshot, DiskWriteKind, MemoryDisk } from './memory-disk.js';
import { activeGeneration, clearOtherGenerations } from './memory-generations.js';
import { MemoryLog } from './memory-log.js';
import { logEntryOps, restartLogOps } from './memory-log-records.js';
import { readSlots, slotDel, slotOps } from './memory-slots.js';
import { MemoryStagedEntries, MemoryStagedPairs, stageEntryOps } from './memory-stage.js';
import { MemoryStoreView } from './memory-store-view.js';
import { GenerationClears } from './generation-clears.js';
import { DEFAULT_REPLICA_RETAIN_ENTRIES } from './replica-log.js';
import { NO_HISTORY } from './replica-recovery.js';

export interface MemoryReplicaOptions {
  create: boolean;
  /** Applies are written with sync (durable before they count); switches always are. */
  sync: boolean;
  /** The store's log keeps at least the newest this many entries (default: the LevelDB follower's). */
  retainEntries?: bigint;
}

/**
 * Opens a follower's store on a memory disk (openReplicaStore's twin for tests) and
 * deletes every data generation but the active one: leftovers of an interrupted snapshot
 * or of data a completed snapshot replaced. The disk may have been a master's: its log is
 * this store's, and its position the one the master recorded with every commit.
 */
export async function openMemoryReplicaStore(disk: MemoryDisk, opts: MemoryReplicaOptions): Promise<MemoryReplicaStore> {
  const handle = disk.open({ create: opts.create });
  try {
    const store = new MemoryReplicaStore(handle, await MemoryLog.open(handle, { role: 'replica' }), opts);
    await store.reconcileLog();
    await clearOtherGenerations(handle, store.dataGen);
    return store;
  } catch (err) {
    handle.close();
    throw err;
  }
}

/**
 * A follower's store in memory: data in generations plus the applied position and the
 * applied entries (its log), written together in one atomic write, with the LevelDB
 * replica's rules (memory-stage.ts) and its failure behaviour: after a failed write the
 * store refuses to write (STORE_FAILED) until ensureWritable() "reopens" it, reading the
 * position and the log back from the disk, since the failed write may have landed.
 *
 * Invariant: appliedSeq is the seq of the newest entry whose data is on the disk, and
 * appliedChecksum is that entry's chained checksum; the log ends there.
 */
export class MemoryReplicaStore implements ReplicaStore {
  appliedSeq = 0n;
  appliedChecksum = GENESIS_CHECKSUM;
  appliedCommitTimeMs = 0;
  historyId: Buffer = Buffer.alloc(0);
  /** Invariant: switched only together with the applied position. */
  dataGen = 0;
  readonly progress = new SeqWaiters(0n);
  /** Set when a write failed: no write until ensureWritable(). */
  private mustReopen = false;
  private reopening: Promise<void> | undefined;
  private readonly clearing = new GenerationClears();
  private readonly sync: boolean;
  private readonly retain: bigint;

  constructor(
    private readonly disk: DiskHandle,
    /** Its own log: the entries it applied (what chained followers stream from it). */
    readonly log: MemoryLog,
    opts: { sync: boolean; retainEntries?: bigint },
  ) {
    this.sync = opts.sync;
    this.retain = opts.retainEntries ?? DEFAULT_REPLICA_RETAIN_ENTRIES;
    this.loadPosition();
  }

  /**
   * At open: a log that does not end at the store's position (none of this store's writes
   * leave one; a disk from elsewhere might) restarts there, as the LevelDB follower's does.
   */
  async reconcileLog(): Promise<void> {
    if (this.log.lastSeq === this.appliedSeq && this.log.lastChecksum === this.appliedChecksum) return;
    const base = { seq: this.appliedSeq, checksum: this.appliedChecksum, commitTimeMs: this.appliedCommitTimeMs };
    await this.write('repair', restartLogOps(base), true, "restart the log at the store's position");
    this.log.restartedAt(base, this.historyId.length === 16 ? this.historyId : NO_HISTORY);
  }

  get position(): ChainPosition {
    return { seq: this.appliedSeq, checksum: this.appliedChecksum, commitTimeMs: this.appliedCommitTimeMs, historyId: this.historyId };
  }

  view(): StoreView {
    const snap = this.disk.snapshot();
    return new MemoryStoreView(snap, snap.get(DATA_GEN_KEY)?.readUInt32BE() ?? 0, snap.get(APPLIED_SEQ_KEY)?.readBigUInt64BE() ?? 0n);
  }

  async stage(entries: readonly Buffer[], historyId: Buffer, from: ChainPosition = this.position): Promise<StagedEntries> {
    const { ops, to } = stageEntryOps(this.dataGen, entries, historyId, from);
    ops.push(...logEntryOps(from.seq + 1n, entries));
    return new MemoryStagedEntries(this, from, to, entries.length, this.dataGen, ops);
  }

  async commit(staged: StagedEntries): Promise<void> {
    const s = this.own(staged, MemoryStagedEntries);
    const { from, to } = s;
    // A failed write since staging is reported as such (by write), not as disorder.
    if (!this.mustReopen && (from.seq !== this.appliedSeq || from.checksum !== this.appliedChecksum || s.gen !== this.dataGen)) {
      throw new ReplicatorError(
        ErrorCode.INTERNAL,
        `staged seqs ${from.seq + 1n}..${to.seq} do not follow the applied seq ${this.appliedSeq} (generation ${s.gen}, active ${this.dataGen})`,
      );
    }
    await this.write('apply', s.ops, this.sync, `apply seqs ${from.seq + 1n}..${to.seq}`);
    this.log.appended(from.seq + 1n, to.seq, to.checksum, to.commitTimeMs, to.historyId);
    this.appliedSeq = to.seq;
    this.appliedChecksum = to.checksum;
    this.appliedCommitTimeMs = to.commitTimeMs;
    this.historyId = to.historyId;
    this.progress.advance(to.seq);
    await this.trimLog();
  }

  /**
   * Keeps the newest `retain` entries, as the LevelDB follower's log does (it deletes whole
   * segments; this trims once a sixteenth of `retain` can go, not at every apply).
   */
  private async trimLog(): Promise<void> {
    const target = this.appliedSeq - this.retain + 1n;
    const slack = this.retain / 16n > 0n ? this.retain / 16n : 1n;
    if (target - this.log.firstSeq >= slack) await this.log.trimTo(target, target - this.log.firstSeq);
  }

  async discard(staged: StagedEntries): Promise<void> {
    this.own(staged, MemoryStagedEntries);
  }

  async apply(entries: readonly Buffer[], historyId: Buffer): Promise<void> {
    if (entries.length === 0) return;
    // The position in memory may be stale after a failed write (it may have landed): read it back first.
    await this.ensureWritable();
    await this.commit(await this.stage(entries, historyId));
  }

  async ensureWritable(): Promise<void> {
    if (!this.mustReopen) return;
    this.reopening ??= this.reopen().finally(() => (this.reopening = undefined));
    await this.reopening;
  }

  stagePairs(gen: number, pairs: readonly { key: Buffer; value: Buffer }[]): StagedPairs {
    // Preconditions of the caller (the snapshot receiver checks the order), checked so a test finds its bug here.
    if (gen === this.dataGen) throw new ReplicatorError(ErrorCode.INTERNAL, `refusing to stage snapshot pairs into the active generation ${gen}`);
    const ops: BatchOp[] = [];
    let last: Buffer | undefined;
    for (const { key, value } of pairs) {
      if (key.length === 0 || (last && Buffer.compare(last, key) >= 0)) throw new ReplicatorError(ErrorCode.INTERNAL, 'snapshot pairs staged out of key order');
      last = key;
      ops.push({ type: 'put', key: dataKey(gen, key), value });
    }
    return new MemoryStagedPairs(this, gen, pairs.length, ops);
  }

  async writePairs(staged: StagedPairs, what: string): Promise<void> {
    // Not synced: nothing points at the generation until switchToSnapshot's synced write.
    await this.write('pairs', this.own(staged, MemoryStagedPairs).ops, false, what);
  }

  async discardPairs(staged: StagedPairs): Promise<void> {
    this.own(staged, MemoryStagedPairs);
  }

  async switchToSnapshot(pos: SnapshotPosition): Promise<number> {
    await this.ensureWritable();
    const old = this.dataGen;
    const ops: BatchOp[] = [
      { type: 'put', key: DATA_GEN_KEY, value: u32(pos.gen) },
      { type: 'put', key: APPLIED_SEQ_KEY, value: u64(pos.seq) },
      { type: 'put', key: APPLIED_CHECKSUM_KEY, value: u32(pos.checksum) },
      { type: 'put', key: APPLIED_COMMIT_TIME_KEY, value: u64(BigInt(pos.commitTimeMs)) },
      { type: 'put', key: HISTORY_ID_KEY, value: pos.historyId },
      // The log restarts at the snapshot's position, in the same write.
      ...restartLogOps(pos),
    ];
    // Always durable: it makes the unsynced pairs durable too.
    await this.write('switch', ops, true, `switch to the snapshot at seq ${pos.seq}`);
    this.log.restartedAt(pos, pos.historyId);
    this.dataGen = pos.gen;
    this.appliedSeq = pos.seq;
    this.appliedChecksum = pos.checksum;
    this.appliedCommitTimeMs = pos.commitTimeMs;
    this.historyId = Buffer.from(pos.historyId);
    // A snapshot of another history may put the follower at a lower seq than before.
    if (pos.seq >= this.progress.position) this.progress.advance(pos.seq);
    else this.progress.reset(pos.seq);
    return old;
  }

  async clearGeneration(gen: number): Promise<void> {
    if (gen === this.dataGen) throw new ReplicatorError(ErrorCode.INTERNAL, `refusing to clear the active generation ${gen}`);
    await this.clearing.settled(gen);
    await this.ensureWritable();
    await this.write('clear', [{ type: 'clear', ...dataRange(gen) }], false, `clear data generation ${gen}`);
  }

  clearGenerationLater(gen: number, onError: (err: unknown) => void): void {
    this.clearing.start(gen, () => this.clearGeneration(gen), onError);
  }

  /** A point-in-time snapshot of the active generation with the position it reflects, from one disk state. */
  async snapshot(): Promise<DataSnapshot> {
    const snap = this.disk.snapshot();
    return new MemoryDataSnapshot(snap, snap.get(DATA_GEN_KEY)?.readUInt32BE() ?? 0, positionIn(snap));
  }

  async loadSlots(): Promise<SlotRecord[]> {
    return readSlots(this.disk.snapshot());
  }

  async saveSlots(slots: readonly SlotRecord[], sync: boolean): Promise<void> {
    if (slots.length > 0) await this.write('slots', slotOps(slots), sync, 'save replication slots');
  }

  async dropSlot(followerId: number, sync: boolean): Promise<void> {
    await this.write('slots', [slotDel(followerId)], sync, `drop the replication slot of follower ${followerId}`);
  }

  async close(): Promise<void> {
    await this.clearing.all();
    this.log.wake();
    this.disk.close();
  }

  /** Every write goes through here: a failure is STORE_FAILED naming what, and blocks writes until ensureWritable(). */
  private async write(kind: DiskWriteKind, ops: readonly BatchOp[], sync: boolean, what: string): Promise<void> {
    if (this.mustReopen) throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: another store write failed meanwhile; the store is reopened first`);
    try {
      await this.disk.write(kind, ops, { sync });
    } catch (err) {
      this.mustReopen = true;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  private async reopen(): Promise<void> {
    try {
      await this.disk.reopen();
    } catch (err) {
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot reopen the store after a failed write: ${(err as Error).message}`, { cause: err });
    }
    this.loadPosition();
    this.log.reload();
    this.mustReopen = false;
  }

  /** Reads the applied position and the active generation back from the disk. */
  private loadPosition(): void {
    const get = (key: Buffer) => this.disk.get(key);
    this.appliedSeq = get(APPLIED_SEQ_KEY)?.readBigUInt64BE() ?? 0n;
    this.appliedChecksum = get(APPLIED_CHECKSUM_KEY)?.readUInt32BE() ?? GENESIS_CHECKSUM;
    this.appliedCommitTimeMs = Number(get(APPLIED_COMMIT_TIME_KEY)?.readBigUInt64BE() ?? 0n);
    const historyId = get(HISTORY_ID_KEY);
    this.historyId = historyId ? Buffer.from(historyId) : Buffer.alloc(0);
    this.dataGen = activeGeneration(this.disk);
    // Readers waiting for a seq follow the stored position.
    if (this.appliedSeq >= this.progress.position) this.progress.advance(this.appliedSeq);
    else this.progress.reset(this.appliedSeq);
  }

  /** The staged work, if this store staged it and it is still pending (then marked used). */
  private own<T extends MemoryStagedEntries | MemoryStagedPairs>(staged: StagedEntries | StagedPairs, kind: new (...args: never[]) => T): T {
    if (!(staged instanceof kind) || staged.owner !== this) throw new ReplicatorError(ErrorCode.INTERNAL, 'staged by another store');
    if (staged.used) throw new ReplicatorError(ErrorCode.INTERNAL, 'already committed or discarded');
    staged.used = true;
    return staged;
  }
}

/** The position a disk state's data reflects (seq 0 when none was recorded). */
function positionIn(snap: DiskSnapshot): { seq: bigint; checksum: number; commitTimeMs: number } {
  return {
    seq: snap.get(APPLIED_SEQ_KEY)?.readBigUInt64BE() ?? 0n,
    checksum: snap.get(APPLIED_CHECKSUM_KEY)?.readUInt32BE() ?? GENESIS_CHECKSUM,
    commitTimeMs: Number(snap.get(APPLIED_COMMIT_TIME_KEY)?.readBigUInt64BE() ?? 0n),
  };
}
