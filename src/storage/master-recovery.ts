import crypto from 'node:crypto';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import type { LogBase } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, DATA_GEN_KEY, u32, u64 } from './layout.js';
import { replayLog } from './log-replay.js';
import type { Store } from './level-store.js';
import { HISTORY_ID_BYTES, type SegmentLog } from './segment-log.js';

/** The batch operations that record the position (seq, checksum, commit time) a master's data reflects. */
export function positionOpsFor(pos: LogBase): { key: Buffer; value: Buffer }[] {
  return [
    { key: APPLIED_SEQ_KEY, value: u64(pos.seq) },
    { key: APPLIED_CHECKSUM_KEY, value: u32(pos.checksum) },
    { key: APPLIED_COMMIT_TIME_KEY, value: u64(BigInt(pos.commitTimeMs)) },
  ];
}

/** The position the store's data reflects (seq 0 for a new store). */
export async function readStorePosition(db: Store): Promise<LogBase> {
  const [seq, checksum, time] = await db.getMany([APPLIED_SEQ_KEY, APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY]);
  return {
    seq: seq ? seq.readBigUInt64BE() : 0n,
    checksum: checksum ? checksum.readUInt32BE() : GENESIS_CHECKSUM,
    commitTimeMs: time ? Number(time.readBigUInt64BE()) : 0,
  };
}

/** The store's active data generation (0 when none was ever switched to). */
export async function readDataGen(db: Store): Promise<number> {
  return (await db.get(DATA_GEN_KEY))?.readUInt32BE() ?? 0;
}

/**
 * Brings a master's data up to its log at start-up, in the active generation `gen`. The store records the seq its data
 * reflects; the log (verified by SegmentLog.open) is the durable record:
 *
 * - store behind the log (the normal case after a crash or power loss: the store is written
 *   without fsync): the entries after the store's seq are re-applied from the log, in
 *   batches. Replay is idempotent: each batch writes its data with its new position.
 * - the store's seq is in the log but the checksums differ, the log no longer reaches back
 *   to it, or the store is ahead of the log's end (it holds changes the durable log lacks:
 *   a disk that lost synced log bytes, or a log from elsewhere): CORRUPT_ENTRY, unless
 *   repairLog, which restarts the log at the store's position under a new history
 *   (followers then resynchronise by snapshot).
 */
export async function recoverMasterStore(db: Store, log: SegmentLog, gen: number, { repairLog = false, log: logger }: { repairLog?: boolean; log?: Logger }): Promise<void> {
  const pos = await readStorePosition(db);
  const end = log.writtenPosition;
  const base = log.physicalBase;
  let problem: string | undefined;
  if (pos.seq > end.seq) problem = `the store reflects seq ${pos.seq} but the log ends at seq ${end.seq}: the store holds changes the durable log lacks`;
  else if (pos.seq < base.seq) problem = `the store reflects seq ${pos.seq} but the log starts after seq ${base.seq}: the entries in between are gone, so the store cannot be brought up to date`;
  else {
    const expected = pos.seq === base.seq ? base.checksum : await checksumInLog(log, pos.seq);
    if (expected !== pos.checksum) problem = `the store reflects seq ${pos.seq} with checksum ${pos.checksum}, but the log's entry ${pos.seq} has checksum ${expected}: they are not the same history`;
  }
  if (problem) {
    if (!repairLog) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `${problem}. Refusing to start; --repair-log restarts the log at the store's seq under a new history (followers resync by snapshot)`);
    const historyId = crypto.randomBytes(HISTORY_ID_BYTES);
    await log.reset(pos, historyId);
    logger?.warn({ storeSeq: pos.seq.toString(), historyId: historyId.toString('hex'), problem }, 'log repaired: restarted the log at the store\'s seq under a new history');
    return;
  }
  if (pos.seq === end.seq) return;
  const started = Date.now();
  log.lowerFirstSeq(pos.seq + 1n);
  await replayLog(db, log, gen, pos, end.seq);
  logger?.info({ fromSeq: (pos.seq + 1n).toString(), toSeq: end.seq.toString(), entries: (end.seq - pos.seq).toString(), ms: Date.now() - started }, 'replayed the log into the store');
}

async function checksumInLog(log: SegmentLog, seq: bigint): Promise<number | undefined> {
  log.lowerFirstSeq(seq);
  return log.checksumAt(seq);
}
