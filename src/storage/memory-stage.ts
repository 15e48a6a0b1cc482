import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { chainsFrom, ENTRY_BODY_OFFSET, entryBodyEnd, entryChecksum, entryCommitTimeMs, entrySeq, forEachMutation, MutationKind } from '../wire/entry-codec.js';
import type { ChainPosition } from './interfaces.js';
import { dataKeyOf, metaKey, MetaName } from './layout.js';
import type { BatchOp } from './memory-disk.js';

export const APPLIED_SEQ_KEY = metaKey(MetaName.APPLIED_SEQ);
export const APPLIED_CHECKSUM_KEY = metaKey(MetaName.APPLIED_CHECKSUM);
export const APPLIED_COMMIT_TIME_KEY = metaKey(MetaName.APPLIED_COMMIT_TIME);
export const HISTORY_ID_KEY = metaKey(MetaName.HISTORY_ID);

/**
 * Verifies entries of history historyId as following `from` and returns the write that
 * applies them: their data changes in generation gen and the new position (seq, checksum,
 * commit time, history). The rules and their order are apply-batch.ts stageEntries' (the
 * LevelDB replica's), so both stores refuse the same entries with the same codes:
 * HISTORY_MISMATCH for another history once anything is applied, then per entry
 * CORRUPT_ENTRY for a malformed one, SEQ_GAP unless it is exactly the next seq,
 * CORRUPT_ENTRY unless it chains from the previous checksum. A refusal returns nothing,
 * so nothing of the entries can be written.
 */
export function stageEntryOps(gen: number, entries: readonly Buffer[], historyId: Buffer, from: ChainPosition): { ops: BatchOp[]; to: ChainPosition } {
  if (from.seq > 0n && !historyId.equals(from.historyId)) {
    throw new ReplicatorError(ErrorCode.HISTORY_MISMATCH, `entries of history ${historyId.toString('hex')} offered to a store of history ${from.historyId.toString('hex')}`);
  }
  let seq = from.seq;
  let checksum = from.checksum;
  let commitTimeMs = from.commitTimeMs;
  const ops: BatchOp[] = [];
  for (const buf of entries) {
    const bodyEnd = entryBodyEnd(buf);
    const entrySeqValue = entrySeq(buf);
    if (entrySeqValue !== seq + 1n) {
      throw new ReplicatorError(ErrorCode.SEQ_GAP, `expected seq ${seq + 1n}, received seq ${entrySeqValue}; refusing to apply it`);
    }
    if (!chainsFrom(buf, checksum)) {
      throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `entry ${entrySeqValue} does not chain from the checksum of seq ${seq}`);
    }
    forEachMutation(buf, ENTRY_BODY_OFFSET, bodyEnd, (kind, keyStart, keyEnd, valueStart, valueEnd) => {
      const key = dataKeyOf(gen, buf, keyStart, keyEnd);
      ops.push(kind === MutationKind.PUT ? { type: 'put', key, value: Buffer.from(buf.subarray(valueStart, valueEnd)) } : { type: 'del', key });
    });
    seq = entrySeqValue;
    checksum = entryChecksum(buf);
    commitTimeMs = entryCommitTimeMs(buf);
  }
  ops.push({ type: 'put', key: APPLIED_SEQ_KEY, value: u64(seq) });
  ops.push({ type: 'put', key: APPLIED_CHECKSUM_KEY, value: u32(checksum) });
  ops.push({ type: 'put', key: APPLIED_COMMIT_TIME_KEY, value: u64(BigInt(commitTimeMs)) });
  if (!historyId.equals(from.historyId)) ops.push({ type: 'put', key: HISTORY_ID_KEY, value: Buffer.from(historyId) });
  return { ops, to: { seq, checksum, commitTimeMs, historyId: Buffer.from(historyId) } };
}

export function u64(value: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(value);
  return b;
}

export function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}
