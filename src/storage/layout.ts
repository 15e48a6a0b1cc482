/**
 * Key layout inside one LevelDB store. Everything (data, log, metadata) lives in one
 * store so that a data change and its log record, or a data change and the follower's
 * applied seq, commit in one atomic batch.
 *
 *   0x00 <name>                meta records (history id, applied seq, ...)
 *   0x01 <u64 seq>             master log chunks, under the last seq they hold (big-endian,
 *                              so they sort by seq); see src/storage/log-chunk.ts
 *   0x02 <u32 gen> <user key>  user data of generation gen (the active one is DATA_GEN's, on
 *                              either role: a node changes role on the same store)
 */
const META = 0x00;
const LOG = 0x01;
const DATA = 0x02;

export const LOG_PREFIX_START = Buffer.from([LOG]);
export const LOG_PREFIX_END = Buffer.from([LOG + 1]);

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([META]), Buffer.from(name, 'ascii')]);
}

export function logKey(seq: bigint): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = LOG;
  k.writeBigUInt64BE(seq, 1);
  return k;
}

export function seqOfLogKey(key: Buffer): bigint {
  return key.readBigUInt64BE(1);
}

/** Bytes before the user key in a data key: 0x02 and the u32 generation. */
export const DATA_KEY_PREFIX_BYTES = 5;

export function dataKey(gen: number, userKey: Buffer): Buffer {
  const k = Buffer.allocUnsafe(DATA_KEY_PREFIX_BYTES + userKey.length);
  k[0] = DATA;
  k.writeUInt32BE(gen, 1);
  userKey.copy(k, DATA_KEY_PREFIX_BYTES);
  return k;
}

/** dataKey(gen, src[start, end)) without a view of the user key. */
export function dataKeyOf(gen: number, src: Buffer, start: number, end: number): Buffer {
  const k = Buffer.allocUnsafe(DATA_KEY_PREFIX_BYTES + end - start);
  k[0] = DATA;
  k.writeUInt32BE(gen, 1);
  src.copy(k, DATA_KEY_PREFIX_BYTES, start, end);
  return k;
}

export function userKeyOf(dataKeyBuf: Buffer): Buffer {
  return dataKeyBuf.subarray(DATA_KEY_PREFIX_BYTES);
}

/** [start, end) bounds of one generation's data. */
export function dataRange(gen: number): { gte: Buffer; lt: Buffer } {
  const gte = Buffer.from([DATA, 0, 0, 0, 0]);
  gte.writeUInt32BE(gen, 1);
  const lt = Buffer.from([DATA, 0, 0, 0, 0]);
  if (gen === 0xffff_ffff) return { gte, lt: Buffer.from([DATA + 1]) };
  lt.writeUInt32BE(gen + 1, 1);
  return { gte, lt };
}

/**
 * The generation of a store that never switched one (no DATA_GEN record): every new
 * store's. A master writes into whatever generation is active (a promoted follower's may
 * be another), and only a follower's snapshot switches it.
 */
export const MASTER_DATA_GEN = 0;

export const MetaName = {
  /**
   * 16 random bytes naming the history of the position the data reflects: a follower
   * writes it with the entries of a new history; a master writes its log's at open. A
   * store without it (a master of an earlier version) takes its log's when opened as a
   * follower.
   */
  HISTORY_ID: 'historyId',
  /** u64 seq of the newest entry the data reflects (either role). Invariant: written in the same batch as that entry's data. */
  APPLIED_SEQ: 'appliedSeq',
  /** u32 chained checksum of the entry at APPLIED_SEQ. */
  APPLIED_CHECKSUM: 'appliedChecksum',
  /** u64 master commit time (ms) of the entry at APPLIED_SEQ. */
  APPLIED_COMMIT_TIME: 'appliedCommitTime',
  /**
   * u32 epoch: written by earlier versions (always 1) and by the previous layout, read
   * only by upgrade-store. The epoch history lives in the log (its `epochs` file), the one
   * record of it, so nothing here can disagree with it.
   */
  EPOCH: 'epoch',
  /**
   * A log kept in the store (the memory stores; the previous layout's master): the entry
   * just before the log's first entry (u64 seq, u32 checksum, u64 commit time), written in
   * the same batch that trims it, so the chain stays verifiable.
   */
  LOG_BASE: 'logBase',
  /** A log kept in the store (the memory stores): its epoch history, as the text of a segment log's `epochs` file. */
  EPOCHS: 'epochs',
  /** u32 generation that user data is read from (absent: 0), either role. Switched atomically by a follower's snapshot. */
  DATA_GEN: 'dataGen',
  /**
   * Master: u64, the log's first seq when a trim last deleted segments; written with sync
   * just before, so every earlier store write is durable before those entries go.
   */
  TRIM_SYNC: 'trimSync',
  /** Prefix of one record per follower streaming from this node (replication slot), either role. */
  SLOT_PREFIX: 'slot:',
} as const;

export function slotKey(followerId: number): Buffer {
  return metaKey(`${MetaName.SLOT_PREFIX}${followerId}`);
}

/** [start, end) of all slot records. */
export function slotRange(): { gte: Buffer; lt: Buffer } {
  return { gte: metaKey(MetaName.SLOT_PREFIX), lt: metaKey('slot;') };
}

/** The replica's position records (see MetaName), written in the same batch as the data they describe. */
export const APPLIED_SEQ_KEY = metaKey(MetaName.APPLIED_SEQ);
export const APPLIED_CHECKSUM_KEY = metaKey(MetaName.APPLIED_CHECKSUM);
export const APPLIED_COMMIT_TIME_KEY = metaKey(MetaName.APPLIED_COMMIT_TIME);
export const HISTORY_ID_KEY = metaKey(MetaName.HISTORY_ID);
export const DATA_GEN_KEY = metaKey(MetaName.DATA_GEN);

/** [start, end) of every generation's user data. */
export const ALL_DATA = { gte: dataRange(0).gte, lt: dataRange(0xffff_ffff).lt };

/** The [start, end) ranges of every generation but `gen` (what an open deletes: leftovers of snapshots). */
export function otherGenerations(gen: number): { gte: Buffer; lt: Buffer }[] {
  const active = dataRange(gen);
  return [
    { gte: ALL_DATA.gte, lt: active.gte },
    { gte: active.lt, lt: ALL_DATA.lt },
  ];
}

/** Big-endian u64 and u32 as stored in meta records. */
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
