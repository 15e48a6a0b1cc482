/**
 * Key layout inside one LevelDB store. Everything (data, log, metadata) lives in one
 * store so that a data change and its log record, or a data change and the follower's
 * applied seq, commit in one atomic batch.
 *
 *   0x00 <name>                meta records (history id, applied seq, ...)
 *   0x01 <u64 seq>             master log chunks, under the last seq they hold (big-endian,
 *                              so they sort by seq); see src/storage/log-chunk.ts
 *   0x02 <u32 gen> <user key>  user data of generation gen (the master always uses 0)
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

/** The master's user data lives in generation 0 (replicas switch generations on snapshots). */
export const MASTER_DATA_GEN = 0;

export const MetaName = {
  /** 16 random bytes naming the history this store's log (or applied entries) belong to. */
  HISTORY_ID: 'historyId',
  /** Follower: u64 seq of the last applied entry. Invariant: written in the same batch as that entry's data. */
  APPLIED_SEQ: 'appliedSeq',
  /** Follower: u32 chained checksum of the entry at APPLIED_SEQ. */
  APPLIED_CHECKSUM: 'appliedChecksum',
  /** Follower: u64 master commit time (ms) of the entry at APPLIED_SEQ. */
  APPLIED_COMMIT_TIME: 'appliedCommitTime',
  /** u32 epoch of the history; bumped on promotion (a later issue). */
  EPOCH: 'epoch',
  /**
   * Master: the entry just before the log's first entry (u64 seq, u32 checksum, u64 commit
   * time), written in the same batch that trims it, so the chain stays verifiable.
   */
  LOG_BASE: 'logBase',
  /** Follower: u32 generation that user data is read from. Switched atomically by a snapshot. */
  DATA_GEN: 'dataGen',
  /**
   * Master: u64, the log's first seq when a trim last deleted segments; written with sync
   * just before, so every earlier store write is durable before those entries go.
   */
  TRIM_SYNC: 'trimSync',
  /** Master: prefix of one record per registered follower (replication slot). */
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
