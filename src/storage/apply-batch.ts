import {
  chainsFrom,
  ENTRY_BODY_OFFSET,
  entryBodyEnd,
  entryChecksum,
  entryCommitTimeMs,
  entrySeq,
  forEachMutation,
  MutationKind,
} from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { ChainPosition, StagedEntries, StagedPairs } from './interfaces.js';
import { dataKey, dataKeyOf, metaKey, MetaName } from './layout.js';
import { u32, u64, type Store } from './level-store.js';

export const APPLIED_SEQ_KEY = metaKey(MetaName.APPLIED_SEQ);
export const APPLIED_CHECKSUM_KEY = metaKey(MetaName.APPLIED_CHECKSUM);
export const APPLIED_COMMIT_TIME_KEY = metaKey(MetaName.APPLIED_COMMIT_TIME);
export const HISTORY_ID_KEY = metaKey(MetaName.HISTORY_ID);

/** A LevelDB chained batch: filled synchronously, written (or closed) once. */
export type ChainedBatch = ReturnType<Store['batch']>;

/**
 * StagedEntries of a LevelDB replica store: the changes and the new position in one
 * chained batch that is not written yet. The batch is the store's business only.
 */
export class LevelStagedEntries implements StagedEntries {
  constructor(
    readonly batch: ChainedBatch,
    /** The data generation the changes are staged into. */
    readonly gen: number,
    readonly from: ChainPosition,
    /** The position once the batch is written. */
    readonly to: ChainPosition,
    readonly count: number,
  ) {}
}

/** StagedPairs of a LevelDB replica store: the pairs' puts in one chained batch, not written yet. */
export class LevelStagedPairs implements StagedPairs {
  constructor(
    readonly batch: ChainedBatch,
    readonly gen: number,
    readonly count: number,
  ) {}
}

/** The apply loop's entry before the first. */
const EMPTY: Buffer = Buffer.alloc(0);

/**
 * Verifies entries of history historyId as following `from` and stages their data changes
 * and the new position (seq, checksum, commit time, history) in one chained batch, as
 * views of the entries: no op objects (on the catch-up path, garbage collection was a
 * fifth of the follower's main thread). Writes nothing. Refuses (the batch dropped)
 * unless the first entry is exactly from.seq + 1, every entry follows the one before, and
 * every checksum chains from the previous one.
 */
export async function stageEntries(db: Store, gen: number, entries: readonly Buffer[], historyId: Buffer, from: ChainPosition): Promise<LevelStagedEntries> {
  if (from.seq > 0n && !historyId.equals(from.historyId)) {
    throw new ReplicatorError(ErrorCode.HISTORY_MISMATCH, `entries of history ${historyId.toString('hex')} offered to a store of history ${from.historyId.toString('hex')}`);
  }
  let seq = from.seq;
  let checksum = from.checksum;
  let commitTimeMs = from.commitTimeMs;
  const batch = db.batch();
  let buf: Buffer = EMPTY;
  const put = (kind: MutationKind, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => {
    const key = dataKeyOf(gen, buf, keyStart, keyEnd);
    if (kind === MutationKind.PUT) batch.put(key, buf.subarray(valueStart, valueEnd));
    else batch.del(key);
  };
  try {
    for (buf of entries) {
      const bodyEnd = entryBodyEnd(buf);
      const entrySeqValue = entrySeq(buf);
      if (entrySeqValue !== seq + 1n) {
        throw new ReplicatorError(ErrorCode.SEQ_GAP, `expected seq ${seq + 1n}, received seq ${entrySeqValue}; refusing to apply it`);
      }
      if (!chainsFrom(buf, checksum)) {
        throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `entry ${entrySeqValue} does not chain from the checksum of seq ${seq}`);
      }
      forEachMutation(buf, ENTRY_BODY_OFFSET, bodyEnd, put);
      seq = entrySeqValue;
      checksum = entryChecksum(buf);
      commitTimeMs = entryCommitTimeMs(buf);
    }
    batch.put(APPLIED_SEQ_KEY, u64(seq));
    batch.put(APPLIED_CHECKSUM_KEY, u32(checksum));
    batch.put(APPLIED_COMMIT_TIME_KEY, u64(BigInt(commitTimeMs)));
    if (!historyId.equals(from.historyId)) batch.put(HISTORY_ID_KEY, historyId);
  } catch (err) {
    // Refused before anything was written: the batch is dropped.
    await batch.close();
    throw err;
  }
  return new LevelStagedEntries(batch, gen, from, { seq, checksum, commitTimeMs, historyId }, entries.length);
}

/**
 * Stages snapshot pairs (user keys) into generation gen: their puts go straight into one
 * chained batch (no op object per pair). Writes nothing; checks nothing about the pairs
 * (their order and digest are the receiver's to verify).
 */
export function stagePairs(db: Store, gen: number, pairs: readonly { key: Buffer; value: Buffer }[]): LevelStagedPairs {
  const batch = db.batch();
  try {
    for (let i = 0; i < pairs.length; i++) {
      const { key, value } = pairs[i];
      batch.put(dataKey(gen, key), value);
    }
  } catch (err) {
    // Nothing was written: release the batch (staging is synchronous, so not awaited).
    batch.close().catch(() => undefined);
    throw err;
  }
  return new LevelStagedPairs(batch, gen, pairs.length);
}
