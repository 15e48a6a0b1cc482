import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { HISTORY_ID_KEY, LOG_PREFIX_END, LOG_PREFIX_START, metaKey, MetaName } from './layout.js';
import { openStore, storeDir, writeBatch, type BatchOp, type Store } from './level-store.js';
import { splitChunk } from './log-chunk.js';
import { readLogBase, verifyLog } from './log-verify.js';
import { FsLogFiles } from './log-files.js';
import { positionOpsFor } from './master-recovery.js';
import { frameRecords } from './segment-format.js';
import { SegmentLog } from './segment-log.js';
import { entrySeq } from '../wire/entry-codec.js';

const EPOCH_KEY = metaKey(MetaName.EPOCH);
const LOG_BASE_KEY = metaKey(MetaName.LOG_BASE);

/**
 * The previous layout (0.1.x) kept the master's log inside LevelDB as chunk records under
 * 0x01 (log-chunk.ts) with the history id, epoch and log base as meta records. A master
 * store still in that layout is refused at start with UPGRADE_REQUIRED, naming the command
 * that converts it: `replication-admin upgrade-store --data-dir <dir>`.
 */
export async function refuseOldLayout(db: Store, dataDir: string): Promise<void> {
  if (!(await hasOldLog(db))) return;
  throw new ReplicatorError(
    ErrorCode.UPGRADE_REQUIRED,
    `the master store in ${dataDir} has the previous layout (its log inside LevelDB); stop every process using it and convert it with: replication-admin upgrade-store --data-dir ${dataDir} (it keeps a backup of the store)`,
  );
}

async function hasOldLog(db: Store): Promise<boolean> {
  const chunk = await db.keys({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END, limit: 1 }).all();
  if (chunk.length > 0) return true;
  // An old master that never committed has a history id in LevelDB and no log directory.
  return (await db.get(HISTORY_ID_KEY)) !== undefined && (await db.get(metaKey(MetaName.APPLIED_SEQ))) === undefined && !(await db.get(metaKey(MetaName.DATA_GEN)));
}

export interface UpgradeReport {
  upgraded: boolean;
  entries: bigint;
  lastSeq: bigint;
  backupDir?: string;
}

/**
 * Converts a stopped master's store from the previous layout: copies the LevelDB directory
 * to store.backup-<time> first, writes the log's entries (same bytes, same history id,
 * epoch and base) into segment files and syncs them, then, in one synced LevelDB batch,
 * records the position the data reflects and deletes the old log records. A crash part way
 * leaves the old layout in place (the next run starts over). Nothing to do for a store
 * already in the current layout.
 */
export async function upgradeStore(dataDir: string, logDirPath: string, log?: Logger): Promise<UpgradeReport> {
  let db = await openStore(dataDir, { create: false });
  try {
    if (!(await hasOldLog(db))) return { upgraded: false, entries: 0n, lastSeq: 0n };
    const v = await verifyLog(db);
    if (v.corrupt) {
      throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `cannot upgrade: log entry ${v.corrupt.seq} is corrupt (${v.corrupt.reason}); the log is intact up to seq ${v.lastSeq}`);
    }
    const historyId = (await db.get(HISTORY_ID_KEY))!;
    const epoch = (await db.get(EPOCH_KEY))?.readUInt32BE() ?? 1;
    const base = await readLogBase(db);
    await db.close();
    const backupDir = `${storeDir(dataDir)}.backup-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.cpSync(storeDir(dataDir), backupDir, { recursive: true });
    log?.info({ backupDir }, 'upgrade: backed up the store');
    db = await openStore(dataDir, { create: false });
    fs.rmSync(logDirPath, { recursive: true, force: true }); // a conversion that was cut short
    const segLog = await SegmentLog.open(new FsLogFiles(logDirPath), { init: { historyId, epoch, base } });
    const ops: BatchOp[] = [];
    let entries = 0n;
    try {
      for await (const [key, chunk] of db.iterator({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END })) {
        const list = splitChunk(chunk).filter((e) => entrySeq(e) > base.seq);
        ops.push({ type: 'del', key });
        if (list.length === 0) continue;
        const { records, ends } = frameRecords(list);
        entries += BigInt(list.length);
        const lastEntry = list[list.length - 1];
        await segLog.append(records, ends, list.length, { seq: entrySeq(lastEntry), checksum: lastEntry.readUInt32BE(lastEntry.length - 4), commitTimeMs: Number(lastEntry.readBigUInt64BE(9)) }, false);
      }
      await segLog.syncAll();
    } finally {
      await segLog.close();
    }
    ops.push({ type: 'del', key: HISTORY_ID_KEY }, { type: 'del', key: EPOCH_KEY }, { type: 'del', key: LOG_BASE_KEY });
    for (const op of positionOpsFor({ seq: v.lastSeq, checksum: v.lastChecksum, commitTimeMs: v.lastCommitTimeMs })) ops.push({ type: 'put', ...op });
    await writeBatch(db, ops, { sync: true });
    log?.info({ entries: entries.toString(), lastSeq: v.lastSeq.toString(), logDir: path.basename(logDirPath) }, 'upgrade: the log now lives in segment files');
    return { upgraded: true, entries, lastSeq: v.lastSeq, backupDir };
  } finally {
    if (db.status === 'open') await db.close();
  }
}
