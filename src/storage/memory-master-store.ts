import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { ENTRY_BODY_OFFSET, entryBodyEnd, entryChecksum, entryCommitTimeMs, forEachMutation, MutationKind } from '../wire/entry-codec.js';
import type { PreparedWrites } from '../wire/prepared-writes.js';
import type { DataSnapshot, MasterStore, SlotRecord, StoreView } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, dataKeyOf, logKey, u32, u64 } from './layout.js';
import { encodeChunks } from './log-chunk.js';
import { MemoryDataSnapshot } from './memory-data-snapshot.js';
import { activeGeneration, clearOtherGenerations } from './memory-generations.js';
import type { BatchOp, DiskHandle, DiskSnapshot, MemoryDisk } from './memory-disk.js';
import { MemoryLog } from './memory-log.js';
import { readSlots, slotDel, slotOps } from './memory-slots.js';
import { MemoryStoreView } from './memory-store-view.js';

export interface MemoryMasterOptions {
  create: boolean;
  repairLog?: boolean;
  log?: Logger;
}

/**
 * Opens the master's store on a memory disk (openMasterStore's twin for tests):
 * STORE_NOT_FOUND without create on a blank disk, DATA_DIR_LOCKED while another store
 * has the disk open, CORRUPT_ENTRY for a log that does not verify (unless repairLog).
 * The disk may have been a follower's: the data stays in its active generation, and the
 * other generations are deleted (as the follower's open does).
 */
export async function openMemoryMasterStore(disk: MemoryDisk, opts: MemoryMasterOptions): Promise<MemoryMasterStore> {
  const handle = disk.open({ create: opts.create });
  try {
    const log = await MemoryLog.open(handle, { ...opts, role: 'master' });
    const gen = activeGeneration(handle);
    await clearOtherGenerations(handle, gen);
    return new MemoryMasterStore(handle, log, gen);
  } catch (err) {
    handle.close();
    throw err;
  }
}

/**
 * The master's store in memory: its data (in the disk's active generation) and its log on
 * one disk, each group's entries, data changes and position in one atomic write, so every
 * state of the disk has data that reflects exactly its log. Entries are encoded by
 * encodeChunks, the LevelDB committer's encoder, so they are byte for byte the LevelDB
 * master's.
 */
export class MemoryMasterStore implements MasterStore {
  /** The group being committed (commitGroup is single-writer: a second caller is a bug). */
  private committing: Promise<unknown> | undefined;
  /** Set once a commit failed: the store's state is unknown and it refuses further commits. */
  private failure: ReplicatorError | undefined;

  constructor(
    private readonly disk: DiskHandle,
    readonly log: MemoryLog,
    /** The generation every commit writes into (the disk's active one; a master never switches it). */
    readonly dataGen = 0,
  ) {}

  view(): StoreView {
    const snap = this.disk.snapshot();
    return new MemoryStoreView(snap, this.dataGen, this.lastSeqIn(snap));
  }

  async commitGroup(requests: readonly PreparedWrites[], commitTimeMs: number, sync: boolean): Promise<{ firstSeq: bigint; lastSeq: bigint }> {
    if (this.failure) throw this.failure;
    if (this.committing) throw new ReplicatorError(ErrorCode.INTERNAL, 'commitGroup called while another group is being committed');
    const p = this.commit(requests, commitTimeMs, sync);
    this.committing = p;
    try {
      return await p;
    } finally {
      this.committing = undefined;
    }
  }

  async snapshot(): Promise<DataSnapshot> {
    const snap = this.disk.snapshot();
    const seq = this.lastSeqIn(snap);
    const entry = seq > 0n ? snap.get(logKey(seq)) : undefined;
    // A log holding no entry at seq (emptied by a repair, or restarted by a follower's snapshot): its base is the entry at seq.
    const position = entry
      ? { seq, checksum: entryChecksum(entry), commitTimeMs: entryCommitTimeMs(entry) }
      : { seq, checksum: seq > 0n ? this.log.lastChecksum : 0, commitTimeMs: seq > 0n ? this.log.lastCommitTimeMs : 0 };
    return new MemoryDataSnapshot(snap, this.dataGen, position);
  }

  async loadSlots(): Promise<SlotRecord[]> {
    return readSlots(this.disk.snapshot());
  }

  async saveSlots(slots: readonly SlotRecord[], sync: boolean): Promise<void> {
    try {
      await this.disk.write('slots', slotOps(slots), { sync });
    } catch (err) {
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot save replication slots: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async dropSlot(followerId: number, sync: boolean): Promise<void> {
    try {
      await this.disk.write('slots', [slotDel(followerId)], { sync });
    } catch (err) {
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot drop the replication slot of follower ${followerId}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.committing?.catch(() => undefined);
    this.disk.close();
  }

  private async commit(requests: readonly PreparedWrites[], commitTimeMs: number, sync: boolean): Promise<{ firstSeq: bigint; lastSeq: bigint }> {
    const firstSeq = this.log.lastSeq + 1n;
    const { buf, starts, ends, lastChecksum } = encodeChunks(firstSeq, commitTimeMs, requests, this.log.lastChecksum);
    const lastSeq = firstSeq + BigInt(starts.length) - 1n;
    if (starts.length === 0) return { firstSeq, lastSeq };
    // The entries and the data changes read back from them, in one write.
    const ops: BatchOp[] = [];
    for (let i = 0; i < starts.length; i++) {
      const entry = buf.subarray(starts[i], ends[i]);
      ops.push({ type: 'put', key: logKey(firstSeq + BigInt(i)), value: entry });
      forEachMutation(entry, ENTRY_BODY_OFFSET, entryBodyEnd(entry), (kind, keyStart, keyEnd, valueStart, valueEnd) => {
        const key = dataKeyOf(this.dataGen, entry, keyStart, keyEnd);
        ops.push(kind === MutationKind.PUT ? { type: 'put', key, value: entry.subarray(valueStart, valueEnd) } : { type: 'del', key });
      });
    }
    // The position the data now reflects, as every store records it (a follower opening this disk reads it).
    ops.push(
      { type: 'put', key: APPLIED_SEQ_KEY, value: u64(lastSeq) },
      { type: 'put', key: APPLIED_CHECKSUM_KEY, value: u32(lastChecksum) },
      { type: 'put', key: APPLIED_COMMIT_TIME_KEY, value: u64(BigInt(commitTimeMs)) },
    );
    try {
      await this.disk.write('commit', ops, { sync });
    } catch (err) {
      this.failure = new ReplicatorError(ErrorCode.STORE_FAILED, `write to the store failed: ${(err as Error).message}`, { cause: err });
      throw this.failure;
    }
    this.log.appended(firstSeq, lastSeq, lastChecksum, commitTimeMs);
    return { firstSeq, lastSeq };
  }

  /**
   * The last seq a disk state holds. The log's lastSeq moves only after its write landed,
   * so a state holds at least that far; a group that landed and is not reported yet is
   * found by probing on (trims never take the newest entry).
   */
  private lastSeqIn(snap: DiskSnapshot): bigint {
    let seq = this.log.lastSeq;
    while (snap.has(logKey(seq + 1n))) seq++;
    return seq;
  }
}
