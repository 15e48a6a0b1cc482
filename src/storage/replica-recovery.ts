import type { Logger } from '../common/logger.js';
import type { ChainPosition } from './interfaces.js';
import { HISTORY_ID_KEY } from './layout.js';
import { replayLog } from './log-replay.js';
import type { Store } from './level-store.js';
import type { SegmentLog } from './segment-log.js';

/** The history id a replica's log carries before it has applied anything. */
export const NO_HISTORY = Buffer.alloc(16);

/**
 * Brings a replica's store and its log into agreement at open (and at a reopen after a
 * failed write). The store records the position its data reflects; the log holds the
 * entries the follower received, appended (and fsynced with --sync) before the store was
 * written, so it may be ahead of the store:
 *
 * - the store's position is in the log (same history, same checksum): the entries after it
 *   are re-applied from the log into generation `gen` (idempotent, as on the master). A
 *   store that records no history (a master's of an earlier version, whose store is
 *   brought up to its log the same way: role changes open one directory in either role)
 *   takes the log's when the log holds its position, and records it;
 * - anything else (no log yet, as after an upgrade; a snapshot installed after the log was
 *   written; a store ahead of a log that was not synced): the log restarts at the store's
 *   position. The store's data is what the follower has; it resumes from there.
 *
 * Returns the position the store then reflects.
 */
export async function reconcileReplica(db: Store, log: SegmentLog, gen: number, pos: ChainPosition, logger?: Logger): Promise<ChainPosition> {
  const recorded = pos.historyId.length === 16 ? pos.historyId : undefined;
  const history = recorded ?? log.historyId;
  const end = log.writtenPosition;
  const base = log.physicalBase;
  const sameHistory = log.historyId.equals(history);
  const within = sameHistory && pos.seq >= base.seq && pos.seq <= end.seq;
  let matches = false;
  if (within) {
    log.lowerFirstSeq(pos.seq);
    matches = (pos.seq === base.seq ? base.checksum : await log.checksumAt(pos.seq)) === pos.checksum;
  }
  if (!matches) {
    if (end.seq !== base.seq || !sameHistory || end.seq !== pos.seq) {
      logger?.warn(
        { storeSeq: pos.seq.toString(), logFrom: (base.seq + 1n).toString(), logTo: end.seq.toString(), sameHistory },
        "follower log: restarted at the store's position (the log did not hold it)",
      );
    }
    await log.reset({ seq: pos.seq, checksum: pos.checksum, commitTimeMs: pos.commitTimeMs }, recorded ?? NO_HISTORY);
    return pos;
  }
  // Not synced: if it is lost, the next open finds the same and records it again.
  if (!recorded && !history.equals(NO_HISTORY)) await db.put(HISTORY_ID_KEY, history);
  if (end.seq === pos.seq) return { ...pos, historyId: history };
  const started = Date.now();
  const reached = await replayLog(db, log, gen, pos, end.seq);
  const at: ChainPosition = { ...reached, historyId: history };
  logger?.info({ fromSeq: (pos.seq + 1n).toString(), toSeq: end.seq.toString(), ms: Date.now() - started }, 'follower: replayed its log into the store');
  return at;
}
