import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { chainsFrom, ENTRY_BODY_OFFSET, entryBodyEnd, entryChecksum, entryCommitTimeMs, entrySeq, forEachMutation, MutationKind } from '../wire/entry-codec.js';
import type { ChainPosition } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, dataKeyOf, HISTORY_ID_KEY, u32, u64 } from './layout.js';

/**
 * Where verified entries' changes go: a LevelDB chained batch (values stay views of the
 * entries) or the memory store's list of operations (which copies them).
 */
export interface StageSink {
  put(key: Buffer, value: Buffer): void;
  del(key: Buffer): void;
}

/** The loop's entry before the first. */
const EMPTY: Buffer = Buffer.alloc(0);

/**
 * The one verification of entries offered to a replica, shared by every ReplicaStore
 * implementation so all refuse the same entries with the same codes, in the same order:
 * HISTORY_MISMATCH for another history once anything is applied, then per entry
 * CORRUPT_ENTRY for a malformed one, SEQ_GAP unless it is exactly the next seq,
 * CORRUPT_ENTRY unless it chains from the previous checksum.
 *
 * Puts each entry's data changes (in generation gen) and then the new position (seq,
 * checksum, commit time, and history when it changes) into sink, and returns that
 * position. On a refusal it throws part way: the caller must then drop whatever the sink
 * received (nothing of it may be written).
 */
export function stageVerified(sink: StageSink, gen: number, entries: readonly Buffer[], historyId: Buffer, from: ChainPosition): ChainPosition {
  if (from.seq > 0n && !historyId.equals(from.historyId)) {
    throw new ReplicatorError(ErrorCode.HISTORY_MISMATCH, `entries of history ${historyId.toString('hex')} offered to a store of history ${from.historyId.toString('hex')}`);
  }
  let seq = from.seq;
  let checksum = from.checksum;
  let commitTimeMs = from.commitTimeMs;
  let buf: Buffer = EMPTY;
  // One visitor for the whole call (not a closure per entry): it reads the current entry from buf.
  const visit = (kind: MutationKind, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => {
    const key = dataKeyOf(gen, buf, keyStart, keyEnd);
    if (kind === MutationKind.PUT) sink.put(key, buf.subarray(valueStart, valueEnd));
    else sink.del(key);
  };
  for (buf of entries) {
    const bodyEnd = entryBodyEnd(buf);
    const entrySeqValue = entrySeq(buf);
    if (entrySeqValue !== seq + 1n) {
      throw new ReplicatorError(ErrorCode.SEQ_GAP, `expected seq ${seq + 1n}, received seq ${entrySeqValue}; refusing to apply it`);
    }
    if (!chainsFrom(buf, checksum)) {
      throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `entry ${entrySeqValue} does not chain from the checksum of seq ${seq}`);
    }
    forEachMutation(buf, ENTRY_BODY_OFFSET, bodyEnd, visit);
    seq = entrySeqValue;
    checksum = entryChecksum(buf);
    commitTimeMs = entryCommitTimeMs(buf);
  }
  sink.put(APPLIED_SEQ_KEY, u64(seq));
  sink.put(APPLIED_CHECKSUM_KEY, u32(checksum));
  sink.put(APPLIED_COMMIT_TIME_KEY, u64(BigInt(commitTimeMs)));
  if (!historyId.equals(from.historyId)) sink.put(HISTORY_ID_KEY, historyId);
  return { seq, checksum, commitTimeMs, historyId };
}
