import fs from 'node:fs';
import { ENTRY_BODY_OFFSET, forEachMutation, MutationKind } from '../wire/entry-codec.js';
import type { PreparedWrites } from '../wire/prepared-writes.js';
import { latencyTrace } from '../common/latency-trace.js';
import type { Logger } from '../common/logger.js';
import type { DataSnapshot, MasterStore, SlotRecord, StoreView } from './interfaces.js';
import { dataKeyOf, logKey, MASTER_DATA_GEN } from './layout.js';
import { LevelDataSnapshot } from './level-data-snapshot.js';
import { LevelLog } from './level-log.js';
import { LevelStoreView } from './level-store-view.js';
import { openStore, removeNewDataDir, storeExists, writeBatch, writeOptions, type Store } from './level-store.js';
import { encodeChunks } from './log-chunk.js';
import { readSlots, slotDel, slotPut } from './slot-records.js';
import type { StoreFaults } from './store-faults.js';

/** Encoded entries of one group up to this size reuse one buffer (about 28,000 entries of 150 bytes). */
const CHUNK_SCRATCH_BYTES = 4 * 1024 * 1024;

/**
 * Opens (or with create, creates) a master's store: the LevelDB store of the data
 * directory and its log, verified whole (see LevelLog.open for the corruption and
 * repair rules). If opening fails after this call created the directory, the directory
 * is removed again, so a failed start leaves nothing behind.
 */
export async function openMasterStore(
  dataDir: string,
  opts: {
    create: boolean;
    repairLog?: boolean;
    log?: Logger;
    /** Failure injection for tests only (see store-faults.ts); production never sets it. */
    faults?: StoreFaults;
  },
): Promise<LevelMasterStore> {
  const isNew = opts.create && !fs.existsSync(dataDir) && !storeExists(dataDir);
  const db = await openStore(dataDir, { create: opts.create });
  try {
    return new LevelMasterStore(db, await LevelLog.open(db, { repairLog: opts.repairLog, log: opts.log }), opts.faults);
  } catch (err) {
    await db.close();
    if (isNew) removeNewDataDir(dataDir);
    throw err;
  }
}

/**
 * The master's store on LevelDB: user data in generation 0, the log as chunks, slots as
 * meta records, all in one LevelDB store so that a group's data changes and its log
 * entries commit in one atomic batch (see layout.ts).
 */
export class LevelMasterStore implements MasterStore {
  /**
   * Where each group's entries are encoded. Reused (one group is committed at a time, and
   * nothing keeps its entries past commitGroup(): the batch and the tail cache copy them), so
   * a group's chunk is not a fresh Buffer that lives through the fsync, is promoted, and
   * waits for a full garbage collection. A larger group gets a buffer of its own.
   */
  private scratch: Buffer | undefined;

  constructor(
    /** The LevelDB store itself: for storage code and tests only, never the roles. */
    readonly db: Store,
    readonly log: LevelLog,
    private readonly faults?: StoreFaults,
  ) {}

  async commitGroup(requests: readonly PreparedWrites[], commitTimeMs: number, sync: boolean): Promise<{ firstSeq: bigint; lastSeq: bigint }> {
    const { log } = this;
    const firstSeq = log.lastSeq + 1n;
    // Entries are encoded once, here, into the group's log chunks; these same bytes are
    // stored and streamed to every follower. The chunks and the data changes are one batch.
    this.scratch ??= Buffer.allocUnsafeSlow(CHUNK_SCRATCH_BYTES);
    const encoded = encodeChunks(firstSeq, commitTimeMs, requests, log.lastChecksum, this.scratch);
    const { chunks, buf, starts, ends } = encoded;
    const lastSeq = firstSeq + BigInt(starts.length) - 1n;
    // A chained batch, built directly (see writeBatch for why not the array form).
    const batch = this.db.batch();
    try {
      for (const c of chunks) batch.put(logKey(c.lastSeq), c.bytes);
      // The data changes, read back from the entries just encoded (values are views).
      const visit = (kind: MutationKind, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => {
        const key = dataKeyOf(MASTER_DATA_GEN, buf, keyStart, keyEnd);
        if (kind === MutationKind.PUT) batch.put(key, buf.subarray(valueStart, valueEnd));
        else batch.del(key);
      };
      // An entry's body runs from ENTRY_BODY_OFFSET to its 4-byte checksum.
      for (let i = 0; i < starts.length; i++) forEachMutation(buf, starts[i] + ENTRY_BODY_OFFSET, ends[i] - 4, visit);
      this.faults?.before('write');
    } catch (err) {
      await batch.close();
      throw err;
    }
    await batch.write(writeOptions(sync));
    this.faults?.after('write');
    latencyTrace?.record(lastSeq);
    log.appended(firstSeq, encoded, commitTimeMs);
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

  close(): Promise<void> {
    return this.db.close();
  }
}
