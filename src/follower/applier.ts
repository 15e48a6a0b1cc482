import { chainsFrom, decodeEntry, GENESIS_CHECKSUM, MutationKind } from '../common/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { dataKey, metaKey, MetaName } from '../common/keys.js';
import { u32, u64, type Store, type StoreSnapshot } from '../common/store.js';

export const FOLLOWER_DATA_GEN = 0;

type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

const APPLIED_SEQ_KEY = metaKey(MetaName.APPLIED_SEQ);
const APPLIED_CHECKSUM_KEY = metaKey(MetaName.APPLIED_CHECKSUM);
const APPLIED_COMMIT_TIME_KEY = metaKey(MetaName.APPLIED_COMMIT_TIME);
const HISTORY_ID_KEY = metaKey(MetaName.HISTORY_ID);

/**
 * Applies log entries to a follower's store. Each call writes the entries' data changes
 * and the new applied position (seq, checksum, history) in one atomic batch, so after any
 * crash the stored position names exactly the data the store holds and the follower
 * resumes from appliedSeq + 1: nothing applied twice, nothing skipped.
 *
 * Invariant: appliedSeq is the seq of the newest entry whose data is in the store, and
 * appliedChecksum is that entry's chained checksum.
 */
export class Applier {
  private constructor(
    private readonly db: Store,
    private readonly sync: boolean,
    public appliedSeq: bigint,
    public appliedChecksum: number,
    public appliedCommitTimeMs: number,
    public historyId: Buffer,
  ) {}

  static async open(db: Store, { sync }: { sync: boolean }): Promise<Applier> {
    const [seq, checksum, commitTime, historyId] = await db.getMany([
      APPLIED_SEQ_KEY,
      APPLIED_CHECKSUM_KEY,
      APPLIED_COMMIT_TIME_KEY,
      HISTORY_ID_KEY,
    ]);
    return new Applier(
      db,
      sync,
      seq ? seq.readBigUInt64BE() : 0n,
      checksum ? checksum.readUInt32BE() : GENESIS_CHECKSUM,
      commitTime ? Number(commitTime.readBigUInt64BE()) : 0,
      historyId ?? Buffer.alloc(0),
    );
  }

  get dataGen(): number {
    return FOLLOWER_DATA_GEN;
  }

  /**
   * Verifies and applies consecutive entries of history historyId. Refuses (and writes
   * nothing) unless the first entry is exactly appliedSeq + 1, every entry follows the
   * one before, and every checksum chains from the previous one.
   */
  async apply(entries: readonly Buffer[], historyId: Buffer): Promise<void> {
    if (entries.length === 0) return;
    if (this.appliedSeq > 0n && !historyId.equals(this.historyId)) {
      throw new ReplicatorError(ErrorCode.HISTORY_MISMATCH, `entries of history ${historyId.toString('hex')} offered to a store of history ${this.historyId.toString('hex')}`);
    }
    const ops: BatchOp[] = [];
    let seq = this.appliedSeq;
    let checksum = this.appliedChecksum;
    let commitTimeMs = this.appliedCommitTimeMs;
    for (const buf of entries) {
      const entry = decodeEntry(buf);
      if (entry.seq !== seq + 1n) {
        throw new ReplicatorError(ErrorCode.SEQ_GAP, `expected seq ${seq + 1n}, received seq ${entry.seq}; refusing to apply it`);
      }
      if (!chainsFrom(buf, checksum)) {
        throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `entry ${entry.seq} does not chain from the checksum of seq ${seq}`);
      }
      for (const m of entry.mutations) {
        ops.push(
          m.kind === MutationKind.PUT
            ? { type: 'put', key: dataKey(this.dataGen, m.key), value: m.value! }
            : { type: 'del', key: dataKey(this.dataGen, m.key) },
        );
      }
      seq = entry.seq;
      checksum = entry.checksum;
      commitTimeMs = entry.commitTimeMs;
    }
    ops.push({ type: 'put', key: APPLIED_SEQ_KEY, value: u64(seq) });
    ops.push({ type: 'put', key: APPLIED_CHECKSUM_KEY, value: u32(checksum) });
    ops.push({ type: 'put', key: APPLIED_COMMIT_TIME_KEY, value: u64(BigInt(commitTimeMs)) });
    if (!historyId.equals(this.historyId)) ops.push({ type: 'put', key: HISTORY_ID_KEY, value: historyId });
    await this.db.batch(ops, { sync: this.sync });
    this.appliedSeq = seq;
    this.appliedChecksum = checksum;
    this.appliedCommitTimeMs = commitTimeMs;
    this.historyId = historyId;
  }
}

/** A follower's applied seq as seen by a snapshot. */
export async function appliedSeqAt(db: Store, snapshot: StoreSnapshot): Promise<bigint> {
  const v = await db.get(APPLIED_SEQ_KEY, { snapshot });
  return v ? v.readBigUInt64BE() : 0n;
}
