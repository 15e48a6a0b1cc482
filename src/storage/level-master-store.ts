import fs from 'node:fs';
import path from 'node:path';
import { latencyTrace } from '../common/latency-trace.js';
import type { Logger } from '../common/logger.js';
import { ENTRY_BODY_OFFSET, forEachMutation, MutationKind } from '../wire/entry-codec.js';
import type { PreparedWrites } from '../wire/prepared-writes.js';
import type { DataSnapshot, MasterStore, SlotRecord, StoreView } from './interfaces.js';
import { dataKeyOf, HISTORY_ID_KEY, MASTER_DATA_GEN, metaKey, MetaName, otherGenerations, u64 } from './layout.js';
import { LevelDataSnapshot } from './level-data-snapshot.js';
import { LevelStoreView } from './level-store-view.js';
import { openStore, removeNewDataDir, storeExists, writeBatch, writeOptions, type Store } from './level-store.js';
import { encodeChunks } from './log-chunk.js';
import { FsLogFiles, type LogFiles } from './log-files.js';
import { positionOpsFor, readDataGen, readStorePosition, recoverMasterStore } from './master-recovery.js';
import { SegmentLog } from './segment-log.js';
import { readSlots, slotDel, slotPut } from './slot-records.js';
import type { StoreFaults } from './store-faults.js';
import { refuseOldLayout } from './upgrade-store.js';

/** Written (synced) before a trim deletes segments: the first seq the log then keeps. */
const TRIM_SYNC_KEY = metaKey(MetaName.TRIM_SYNC);
/** Encoded entries of one group up to this size reuse one buffer (about 28,000 entries of 150 bytes). */
const CHUNK_SCRATCH_BYTES = 4 * 1024 * 1024;

/** The log's directory inside a node's data directory. */
export function logDir(dataDir: string): string {
  return path.join(dataDir, 'log');
}

export interface MasterStoreOptions {
  create: boolean;
  repairLog?: boolean;
  log?: Logger;
  /** Segment files roll over at about this size (default 64 MiB). */
  maxSegmentBytes?: number;
  /** The log's files (tests put a power-loss model here); default: <dataDir>/log. */
  logFiles?: LogFiles;
  /** Failure injection for tests only (see store-faults.ts); production never sets it. */
  faults?: StoreFaults;
}

/**
 * Opens (or with create, creates) a master's store: its log (segment files, verified whole
 * on open, see SegmentLog) and its LevelDB data, which is then brought up to the log's end
 * by replaying the entries it lacks (see master-recovery.ts). The directory may have been
 * a follower's (a promotion): the data stays in its active generation, leftovers of other
 * generations are deleted, and the store records its log's history id. If opening fails
 * after this call created the directory, the directory is removed again.
 */
export async function openMasterStore(dataDir: string, opts: MasterStoreOptions): Promise<LevelMasterStore> {
  const isNew = opts.create && !fs.existsSync(dataDir) && !storeExists(dataDir);
  const db = await openStore(dataDir, { create: opts.create });
  let log: SegmentLog | undefined;
  try {
    await refuseOldLayout(db, dataDir);
    log = await SegmentLog.open(opts.logFiles ?? new FsLogFiles(logDir(dataDir)), { repairLog: opts.repairLog, log: opts.log, maxSegmentBytes: opts.maxSegmentBytes });
    const gen = await readDataGen(db);
    await recoverMasterStore(db, log, gen, opts);
    await takeOver(db, log, gen);
    return new LevelMasterStore(db, log, opts.faults, gen);
  } catch (err) {
    await log?.close();
    await db.close();
    if (isNew) removeNewDataDir(dataDir);
    throw err;
  }
}

/**
 * What a master makes of its directory once its data reflects its log: every data
 * generation but the active one is deleted (leftovers of a follower's snapshots, which
 * its open would delete too), and the history id of the position is recorded as the log's
 * (a follower's store recorded its upstream's, and a repair starts a new one), so the
 * directory opens as a follower's again with the right history. The record is written with
 * the position it names, synced, and only when it differs.
 */
async function takeOver(db: Store, log: SegmentLog, gen: number): Promise<void> {
  for (const range of otherGenerations(gen)) await db.clear(range);
  const recorded = await db.get(HISTORY_ID_KEY);
  if (recorded?.equals(log.historyId)) return;
  const ops = positionOpsFor(await readStorePosition(db)).map((op) => ({ type: 'put' as const, ...op }));
  ops.push({ type: 'put', key: HISTORY_ID_KEY, value: log.historyId });
  await writeBatch(db, ops, { sync: true });
}

/**
 * The master's store: the log in segment files (the durable record) and the data in
 * LevelDB (its active generation) with the seq it reflects, written without fsync.
 *
 * Write order, per group: the entries are appended to the log and fdatasynced, then
 * published to streams (they are durable), then the data changes and the new position go
 * to LevelDB in one batch (not synced), and only then is the group acknowledged, so a
 * client that reads the master after its answer sees its write. An acknowledged write is
 * in a synced segment, and the store can never hold a change that the durable log lacks:
 * power loss may cost the store its newest batches, never the log its synced entries, and
 * recovery replays the log past the store's seq.
 *
 * Invariant: store seq <= log.lastSeq <= log's written seq; a trim never deletes a segment
 * holding an entry past the store's seq (log.trimLimit).
 */
export class LevelMasterStore implements MasterStore {
  /** Where each group's entries are encoded; reused (one group at a time, nothing keeps them). */
  private scratch: Buffer | undefined;

  constructor(
    /** The LevelDB store itself: for storage code and tests only, never the roles. */
    readonly db: Store,
    readonly log: SegmentLog,
    private readonly faults?: StoreFaults,
    /** The data generation every commit writes into (the store's active one; never switched by a master). */
    readonly dataGen: number = MASTER_DATA_GEN,
  ) {
    // A trim persists the slots with it; before segments are deleted, a synced store write
    // makes every earlier (unsynced) data write durable, so nothing needs them again.
    log.trimHook = async (slots, deleting) => {
      const ops = slots.map(slotPut);
      // A synced write must write something: a record of its own, never the position
      // (read back and rewritten beside running commits, it could go backwards).
      if (deleting) ops.push({ type: 'put', key: TRIM_SYNC_KEY, value: u64(log.firstSeq) });
      if (ops.length > 0) await writeBatch(db, ops, { sync: deleting });
    };
  }

  async commitGroup(requests: readonly PreparedWrites[], commitTimeMs: number, sync: boolean): Promise<{ firstSeq: bigint; lastSeq: bigint }> {
    const { log } = this;
    const from = log.writtenPosition;
    const firstSeq = from.seq + 1n;
    // Entries are encoded once, here, as log records (framed as the stream frames them);
    // these same bytes are written to the segment and streamed to every follower.
    this.scratch ??= Buffer.allocUnsafeSlow(CHUNK_SCRATCH_BYTES);
    const encoded = encodeChunks(firstSeq, commitTimeMs, requests, from.checksum, this.scratch);
    const { buf, starts, ends } = encoded;
    const count = starts.length;
    const lastSeq = firstSeq + BigInt(count) - 1n;
    const last = { seq: lastSeq, checksum: encoded.lastChecksum, commitTimeMs };
    // 1. The durable record: one write, one fdatasync.
    this.faults?.before('append');
    await log.append(buf, ends, count, last, sync);
    this.faults?.after('append');
    latencyTrace?.record(lastSeq);
    // 2. Durable, so it may be streamed now: followers do not wait for the master's own
    // store write (one thread-pool round trip less between commit and follower apply).
    log.publish(firstSeq, { src: buf, starts, ends }, last);
    // 3. The data and its position, one LevelDB batch, not synced (the log is the durable record).
    const batch = this.db.batch();
    try {
      const visit = (kind: MutationKind, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => {
        const key = dataKeyOf(this.dataGen, buf, keyStart, keyEnd);
        if (kind === MutationKind.PUT) batch.put(key, buf.subarray(valueStart, valueEnd));
        else batch.del(key);
      };
      // An entry's body runs from ENTRY_BODY_OFFSET to its 4-byte checksum.
      for (let i = 0; i < count; i++) forEachMutation(buf, starts[i] + ENTRY_BODY_OFFSET, ends[i] - 4, visit);
      for (const op of positionOpsFor(last)) batch.put(op.key, op.value);
      this.faults?.before('write');
    } catch (err) {
      await batch.close();
      throw err;
    }
    await batch.write(writeOptions(false));
    this.faults?.after('write');
    // A trim may now delete segments up to here (the store holds these entries).
    log.trimLimit = lastSeq + 1n;
    // 4. The caller acknowledges the group: reads of this store see it from now on.
    return { firstSeq, lastSeq };
  }

  snapshot(): Promise<DataSnapshot> {
    return LevelDataSnapshot.take(this.db);
  }

  loadSlots(): Promise<SlotRecord[]> {
    return readSlots(this.db);
  }

  async saveSlots(slots: readonly SlotRecord[], sync: boolean): Promise<void> {
    if (slots.length > 0) await writeBatch(this.db, slots.map(slotPut), { sync });
  }

  async dropSlot(followerId: number, sync: boolean): Promise<void> {
    await writeBatch(this.db, [slotDel(followerId)], { sync });
  }

  view(): StoreView {
    return new LevelStoreView(this.db, 'master');
  }

  async close(): Promise<void> {
    await this.log.close();
    await this.db.close();
  }
}
