import type { Logger } from '../common/logger.js';
import type { ChainPosition, SlotRecord } from './interfaces.js';
import type { LogFiles } from './log-files.js';
import { NO_HISTORY } from './replica-recovery.js';
import { frameRecords } from './segment-format.js';
import { SegmentLog } from './segment-log.js';
import type { StoreFaults } from './store-faults.js';

/** Entries a follower's log keeps by default (the master's --retain-entries default). */
export const DEFAULT_REPLICA_RETAIN_ENTRIES = 100_000n;

/** The first segment of a follower's log when there is none: at the store's position. */
export function replicaLogInit(position: ChainPosition): { historyId: Buffer; epoch: number; base: { seq: bigint; checksum: number; commitTimeMs: number } } {
  const base = { seq: position.seq, checksum: position.checksum, commitTimeMs: position.commitTimeMs };
  return { historyId: position.historyId.length === 16 ? position.historyId : NO_HISTORY, epoch: 1, base };
}

/**
 * Opens a follower's own log (created at the store's position when there is none: a new
 * follower, or a store of the previous layout). `persistTrim` is what a trim must write
 * before it moves the log's first seq: the slots it was given, and, before it deletes
 * segments, a synced store write, so the store is durable past them (as the master's).
 */
export async function openReplicaLog(
  opts: { logFiles?: LogFiles; log?: Logger; maxSegmentBytes?: number },
  position: ChainPosition,
  persistTrim: (slots: readonly SlotRecord[], deleting: boolean) => Promise<void>,
): Promise<SegmentLog> {
  const log = await SegmentLog.open(opts.logFiles!, { log: opts.log, maxSegmentBytes: opts.maxSegmentBytes, init: replicaLogInit(position) });
  log.trimHook = persistTrim;
  return log;
}

/**
 * Appends entries from..to (verified, about to be written to the store) to the log, with
 * one fdatasync when sync. The log must end where the store is (open reconciles them and
 * they move together); when it does not (the first entry of a new history, or a log that
 * was restarted), it restarts at `from` first, so its chain always matches the store's.
 */
export async function appendApplied(log: SegmentLog, from: ChainPosition, to: ChainPosition, entries: readonly Buffer[], sync: boolean, faults?: StoreFaults): Promise<void> {
  const w = log.writtenPosition;
  if (!log.historyId.equals(to.historyId) || w.seq !== from.seq || w.checksum !== from.checksum) {
    await log.reset({ seq: from.seq, checksum: from.checksum, commitTimeMs: from.commitTimeMs }, to.historyId);
  }
  const { records, ends } = frameRecords(entries);
  faults?.before('append');
  await log.append(records, ends, entries.length, { seq: to.seq, checksum: to.checksum, commitTimeMs: to.commitTimeMs }, sync);
  faults?.after('append');
}

/**
 * Deletes the log's oldest segments once they hold only entries older than the newest
 * `retain` applied ones (whatever chained followers still need: slot-aware retention for
 * followers is not there yet).
 */
export async function trimReplicaLog(log: SegmentLog, appliedSeq: bigint, retain = DEFAULT_REPLICA_RETAIN_ENTRIES): Promise<void> {
  const target = appliedSeq - retain + 1n;
  if (target > 0n && log.oldestSegmentEndsBefore(target)) await log.trimTo(target, retain);
}
