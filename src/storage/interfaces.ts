import type { SeqWaiters } from '../common/seq-waiters.js';
import type { EpochHistory } from './epoch-history.js';
import type { PreparedWrites } from '../wire/prepared-writes.js';
import type { SnapshotRow } from '../wire/subscribe-encoder.js';

/**
 * The storage contract: everything master, follower and tools may know about how a node
 * keeps its data and its log. Two implementations keep it: LevelDB (level-*.ts, the
 * product) and memory (memory-*.ts, for tests), and one conformance suite
 * (test/helpers/storage-conformance.ts, run by test/unit/storage-memory.test.ts and
 * storage-level.test.ts) runs against both.
 *
 * Shapes follow etcd raft's Storage and Level's abstract-level: small, positional
 * (seqs, not keys), and atomic where the replication guarantees need it. Nothing here
 * names a LevelDB key, a chunk or a meta record: those live in layout.ts and the level-*
 * implementations only.
 *
 * Vocabulary: seq (one entry's position), firstSeq/lastSeq (the log's bounds), appliedSeq
 * (a replica's position), fromSeq (where a read starts). Seqs are bigint.
 */

/** A point in a history: just after the entry with this seq, whose chained checksum this is. */
export interface ChainPosition {
  seq: bigint;
  checksum: number;
  commitTimeMs: number;
  historyId: Buffer;
}

/** The entry just before a log's first one (seq 0, checksum 0 for an untrimmed log). */
export interface LogBase {
  seq: bigint;
  checksum: number;
  commitTimeMs: number;
}

/** One follower's replication slot as stored on the master. */
export interface SlotRecord {
  followerId: number;
  /** The newest seq the follower reported applied. */
  appliedSeq: bigint;
  /** The slot fell behind the retention cap and no longer holds the log. */
  lost: boolean;
}

/**
 * A node's log of entries (encoded by src/wire/entry-codec.ts, checksums chained).
 *
 * Invariant: firstSeq <= lastSeq + 1 (equal when empty), and every seq in
 * [firstSeq, lastSeq] has a stored entry whose checksum chains from the one before (from
 * base() for firstSeq).
 */
export interface ReplicationLog {
  /** 16 random bytes naming this history; a repaired log starts a new one. */
  readonly historyId: Buffer;
  /** Which epoch's master committed which seqs (docs/roles.md), oldest first; durable. */
  readonly epochs: EpochHistory;
  /** The newest epoch of `epochs`. */
  readonly epoch: number;
  readonly firstSeq: bigint;
  readonly lastSeq: bigint;
  /** Chained checksum and commit time of the entry at lastSeq (the base's when empty). */
  readonly lastChecksum: number;
  readonly lastCommitTimeMs: number;
  /**
   * Up to maxEntries consecutive entries starting exactly at fromSeq (at least one if
   * fromSeq <= lastSeq, maxBytes permitting more). Never skips: LOG_TRIMMED if fromSeq is
   * below firstSeq, CORRUPT_ENTRY for a hole. The Buffers are the caller's.
   */
  read(fromSeq: bigint, maxEntries: number, maxBytes: number): Promise<Buffer[]>;
  /**
   * read() from memory only (entries this process appended), or undefined when fromSeq is
   * not there. No copy: views valid until the next append, so encode them before any await.
   */
  readCached(fromSeq: bigint, maxEntries: number, maxBytes: number): Buffer[] | undefined;
  /** The entry at seq, or undefined when it is not in the log. */
  entryAt(seq: bigint): Promise<Buffer | undefined>;
  /**
   * The chained checksum at seq: of the entry at seq, or the base's when seq is
   * firstSeq - 1 (0 for seq 0); undefined when the log no longer (or not yet) knows it.
   */
  checksumAt(seq: bigint): Promise<number | undefined>;
  /** About how many bytes the log holds from seq to its end (for the bytes rules of retention). */
  bytesFrom(seq: bigint): Promise<number>;
  /**
   * Deletes entries below newFirstSeq, at most about maxEntries of them, and records the
   * new base (the last deleted entry) in the same atomic write, together with slots when
   * given (written even when there is nothing to trim). Readers see the new firstSeq
   * before the entries go. Never trims lastSeq.
   * Returns the new firstSeq (unchanged when there was nothing to trim).
   */
  trimTo(newFirstSeq: bigint, maxEntries: bigint, slots?: readonly SlotRecord[]): Promise<bigint>;
  /** Resolves on the next append or wake(), or after timeoutMs. */
  waitForAppend(timeoutMs: number): Promise<void>;
  /** Wakes every waitForAppend (on shutdown, so streams can end). */
  wake(): void;
}

/**
 * A log whose epoch history its node changes: a master beginning an epoch (promotion), a
 * follower adopting its upstream's. Both are durable before they resolve, and a failed or
 * interrupted one leaves the old history.
 */
export interface EpochLog extends ReplicationLog {
  /**
   * Begins `epoch` at firstSeq, the next seq the log will write, for an epoch above the
   * log's (INVALID_ARGUMENT otherwise). Epochs of the history that start after firstSeq are
   * dropped (adopted from an upstream, never received here).
   */
  beginEpoch(epoch: number, firstSeq: bigint): Promise<void>;
  /**
   * Replaces the history with an upstream's: INVALID_ARGUMENT for an invalid history,
   * STALE_EPOCH for one whose newest epoch is below the log's. The same history writes nothing.
   */
  adoptEpochs(history: EpochHistory): Promise<void>;
}

/** One consistent state of a node's data: its values and the seq they reflect, from one instant. */
export interface StoreView {
  /** The seq this state reflects (master: last committed; follower: applied). */
  seq(): Promise<bigint>;
  get(key: Buffer): Promise<Buffer | undefined>;
  /** sha256 over every (key, value) in key order, each framed by u32 big-endian lengths (see digest.ts). */
  digest(): Promise<{ digest: string; keys: bigint }>;
  close(): Promise<void>;
}

/** What every node's store can do: consistent reads. */
export interface ReadableStore {
  view(): StoreView;
  close(): Promise<void>;
}

/** Rows of a snapshot in key order; `keyOffset` bytes at the front of each row's key are the layout's, not the user's. */
export interface SnapshotRows {
  next(): Promise<SnapshotRow[]>;
  close(): Promise<void>;
}

/** A point-in-time copy of a node's data (its active generation) with the position it corresponds to. */
export interface DataSnapshot {
  readonly seq: bigint;
  /** Checksum and commit time of the entry at seq (0 when seq is 0). */
  readonly checksum: number;
  readonly commitTimeMs: number;
  /** LevelDB's estimate of the data's size in bytes (compressed; what older followers show progress against). */
  readonly approxBytes: number;
  /** Bytes of layout prefix on each row's key (skip them to get the user key). */
  readonly keyOffset: number;
  /** Reads the data in key order, up to `pairs` pairs (about `bytes`) per next(). */
  rows(pairs: number, bytes: number): SnapshotRows;
  /**
   * The exact number of pairs, counted on the snapshot (keys only, no value is read); may
   * run beside rows(). Rejects once `signal` aborts; settled before close() may be called.
   */
  countKeys(signal: AbortSignal): Promise<bigint>;
  close(): Promise<void>;
}

/**
 * What a node serves to the followers that stream from it, whatever its role: its log,
 * snapshots of its data, and the replication slots of those followers (a master's, or a
 * follower's that chained followers stream from).
 */
export interface ServingStore {
  readonly log: ReplicationLog;
  /** A point-in-time snapshot of the data and its position (never blocks writers). */
  snapshot(): Promise<DataSnapshot>;
  loadSlots(): Promise<SlotRecord[]>;
  saveSlots(slots: readonly SlotRecord[], sync: boolean): Promise<void>;
  /**
   * Deletes one follower's slot record (fsynced first when sync), so loadSlots() no longer
   * returns it, also after a restart. Deleting a slot that is not stored does nothing.
   */
  dropSlot(followerId: number, sync: boolean): Promise<void>;
}

/**
 * The master's store: its data and its log. The log is the durable record: a group's
 * entries are durable in the log before its data changes are written, so the data never
 * holds a change the durable log lacks, and opening the store brings the data up to the
 * log's end (LevelDB: segment files plus replay, see level-master-store.ts; memory: one
 * atomic write of both).
 * Invariant: once open, the data reflects exactly the log up to log.lastSeq.
 */
export interface MasterStore extends ReadableStore, ServingStore {
  readonly log: EpochLog;
  /**
   * Commits one group of validated writes as entries lastSeq + 1, ..., chained from
   * lastChecksum, and their data changes: durable in the log first (fdatasynced when
   * sync), then in the data. Streams may see the entries once they are durable; the
   * call resolves (the group may be acknowledged) once the data holds them too.
   * Only the master's group committer calls it, one group at a time: it is what makes
   * seqs single-writer. A failure leaves the store's state unknown: the caller must stop.
   */
  commitGroup(requests: readonly PreparedWrites[], commitTimeMs: number, sync: boolean): Promise<{ firstSeq: bigint; lastSeq: bigint }>;
}

/** Consecutive entries verified to follow `from`, staged and not written yet. */
export interface StagedEntries {
  readonly from: ChainPosition;
  /** The position once written. */
  readonly to: ChainPosition;
  readonly count: number;
  /** The data generation the changes are staged into. */
  readonly gen: number;
}

/** Pairs of a snapshot being installed, staged and not written yet. */
export interface StagedPairs {
  readonly gen: number;
  readonly count: number;
}

/** Where a completed snapshot leaves a replica. */
export interface SnapshotPosition extends ChainPosition {
  gen: number;
  /**
   * The serving node's epoch. Informational: a switch changes no epoch (the follower
   * adopted its upstream's history, log.adoptEpochs, when the stream started).
   */
  epoch: number;
}

/**
 * A follower's store: data plus the position it reflects, always written together, and
 * the entries it applied in a log of its own (LevelDB: written durably before the data
 * when it syncs, and replayed into the data on open; memory: in the same atomic write).
 * The log keeps the newest entries (retention) and restarts at a snapshot's position; it
 * and the data can be served to chained followers (ServingStore).
 * Data lives in generations: reads use the active one; a snapshot is installed into the
 * next and switched to atomically with its position.
 *
 * Invariant: appliedSeq is the seq of the newest entry whose data is in the store, and
 * appliedChecksum is that entry's chained checksum; log.lastSeq is appliedSeq once the
 * store is open and no apply is under way.
 */
export interface ReplicaStore extends ReadableStore, ServingStore {
  /** Its own log: the entries it applied (the same object for the store's whole life). */
  readonly log: EpochLog;
  readonly appliedSeq: bigint;
  readonly appliedChecksum: number;
  readonly appliedCommitTimeMs: number;
  readonly historyId: Buffer;
  readonly dataGen: number;
  readonly position: ChainPosition;
  /** Readers waiting for a seq (read-your-writes); moved after each durable apply or switch. */
  readonly progress: SeqWaiters;
  /**
   * Verifies entries of history historyId as following `from` (default: the applied
   * position) and stages their changes and the new position. Writes nothing. SEQ_GAP,
   * CORRUPT_ENTRY or HISTORY_MISMATCH when they do not follow.
   */
  stage(entries: readonly Buffer[], historyId: Buffer, from?: ChainPosition): Promise<StagedEntries>;
  /** Writes staged entries atomically with their position (durable first when the store syncs). */
  commit(staged: StagedEntries): Promise<void>;
  discard(staged: StagedEntries): Promise<void>;
  /** stage + commit. */
  apply(entries: readonly Buffer[], historyId: Buffer): Promise<void>;
  /** After a failed write: reopens and reloads the position (STORE_FAILED while impossible). */
  ensureWritable(): Promise<void>;
  /** Stages snapshot pairs (user keys, strictly increasing) into generation gen. */
  stagePairs(gen: number, pairs: readonly { key: Buffer; value: Buffer }[]): StagedPairs;
  /** Writes staged pairs (not synced: switchToSnapshot's durable write covers them). */
  writePairs(staged: StagedPairs, what: string): Promise<void>;
  discardPairs(staged: StagedPairs): Promise<void>;
  /** Makes generation pos.gen the data, atomically with the position; returns the replaced generation. */
  switchToSnapshot(pos: SnapshotPosition): Promise<number>;
  /** Deletes every key of a non-active generation. */
  clearGeneration(gen: number): Promise<void>;
  clearGenerationLater(gen: number, onError: (err: unknown) => void): void;
}
