import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { SeqWaiters } from '../common/seq-waiters.js';
import { GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import type { ChainPosition, ReplicaStore, SnapshotPosition, StagedEntries, StagedPairs, StoreView } from './interfaces.js';
import { dataKey, dataRange, metaKey, MetaName } from './layout.js';
import type { BatchOp, DiskHandle, DiskWriteKind, MemoryDisk } from './memory-disk.js';
import { stageEntryOps } from './memory-stage.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, HISTORY_ID_KEY, u32, u64 } from './layout.js';
import { MemoryStoreView } from './memory-store-view.js';
import { GenerationClears } from './generation-clears.js';

const DATA_GEN_KEY = metaKey(MetaName.DATA_GEN);
const EPOCH_KEY = metaKey(MetaName.EPOCH);
const ALL_DATA = { gte: dataRange(0).gte, lt: dataRange(0xffff_ffff).lt };

export interface MemoryReplicaOptions {
  create: boolean;
  /** Applies are written with sync (durable before they count); switches always are. */
  sync: boolean;
}

/**
 * Opens a follower's store on a memory disk (openReplicaStore's twin for tests) and
 * deletes every data generation but the active one: leftovers of an interrupted snapshot
 * or of data a completed snapshot replaced.
 */
export async function openMemoryReplicaStore(disk: MemoryDisk, opts: MemoryReplicaOptions): Promise<MemoryReplicaStore> {
  const handle = disk.open({ create: opts.create });
  try {
    const store = new MemoryReplicaStore(handle, opts.sync);
    const active = dataRange(store.dataGen);
    const snap = handle.snapshot();
    // Written only when there is something to delete: an injected fault is meant for the test's own writes.
    if (snap.range(ALL_DATA.gte, active.gte).length + snap.range(active.lt, ALL_DATA.lt).length > 0) {
      await handle.write(
        'clear',
        [
          { type: 'clear', gte: ALL_DATA.gte, lt: active.gte },
          { type: 'clear', gte: active.lt, lt: ALL_DATA.lt },
        ],
        { sync: false },
      );
    }
    return store;
  } catch (err) {
    handle.close();
    throw err;
  }
}

/**
 * A follower's store in memory: data in generations plus the applied position, written
 * together in one atomic write, with the LevelDB replica's rules (memory-stage.ts) and
 * its failure behaviour: after a failed write the store refuses to write (STORE_FAILED)
 * until ensureWritable() "reopens" it, reading the position back from the disk, since
 * the failed write may have landed.
 *
 * Invariant: appliedSeq is the seq of the newest entry whose data is on the disk, and
 * appliedChecksum is that entry's chained checksum.
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

  constructor(
    private readonly disk: DiskHandle,
    private readonly sync: boolean,
  ) {
    this.loadPosition();
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
    this.appliedSeq = to.seq;
    this.appliedChecksum = to.checksum;
    this.appliedCommitTimeMs = to.commitTimeMs;
    this.historyId = to.historyId;
    this.progress.advance(to.seq);
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
      { type: 'put', key: EPOCH_KEY, value: u32(pos.epoch) },
    ];
    // Always durable: it makes the unsynced pairs durable too.
    await this.write('switch', ops, true, `switch to the snapshot at seq ${pos.seq}`);
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

  async close(): Promise<void> {
    await this.clearing.all();
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
    this.dataGen = get(DATA_GEN_KEY)?.readUInt32BE() ?? 0;
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

class MemoryStagedEntries implements StagedEntries {
  used = false;
  constructor(
    readonly owner: MemoryReplicaStore,
    readonly from: ChainPosition,
    readonly to: ChainPosition,
    readonly count: number,
    readonly gen: number,
    readonly ops: readonly BatchOp[],
  ) {}
}

class MemoryStagedPairs implements StagedPairs {
  used = false;
  constructor(
    readonly owner: MemoryReplicaStore,
    readonly gen: number,
    readonly count: number,
    readonly ops: readonly BatchOp[],
  ) {}
}
