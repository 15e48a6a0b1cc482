import { ENTRY_BODY_OFFSET, forEachMutation, MutationKind, type Mutation } from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { dataKeyOf, logKey } from '../storage/layout.js';
import { latencyTrace } from '../common/latency-trace.js';
import type { Logger } from '../common/logger.js';
import { writeOptions, type Store } from '../storage/level-store.js';
import { encodeChunks } from '../storage/log-chunk.js';
import { prepareWrites, type PreparedWrites } from '../wire/prepared-writes.js';
import type { Wal } from '../storage/master-log.js';

/** The master's user data lives in generation 0. */
export const MASTER_DATA_GEN = 0;

/** Encoded entries of one group up to this size reuse one buffer (about 28,000 entries of 150 bytes). */
const CHUNK_SCRATCH_BYTES = 4 * 1024 * 1024;

export interface CommitOptions {
  /** fsync every group before acknowledging it (default true). */
  sync: boolean;
  /** Upper bound of entries (seqs) per group; a single larger request still commits whole. */
  maxGroupEntries: number;
  /** Upper bound of key and value bytes per group. */
  maxGroupBytes: number;
}

export interface CommitResult {
  firstSeq: bigint;
  lastSeq: bigint;
}

interface Pending {
  writes: PreparedWrites;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

/**
 * The only writer of the master's store, and so the only place that assigns seqs.
 *
 * Requests queue while a group is being written; the next group takes everything queued
 * (up to the limits), so concurrent clients share one LevelDB batch and one fsync. Each
 * group writes every data change together with its log entries in one atomic batch:
 * after a crash, recovery finds both or neither.
 */
export class GroupCommitter {
  private queue: Pending[] = [];
  private running = false;
  private failure: ReplicatorError | undefined;
  private closing = false;
  private idle: Promise<void> = Promise.resolve();
  /**
   * Where each group's entries are encoded. Reused (one group is committed at a time, and
   * nothing keeps its entries past commit(): the batch and the tail cache copy them), so
   * a group's chunk is not a fresh Buffer that lives through the fsync, is promoted, and
   * waits for a full garbage collection. A larger group gets a buffer of its own.
   */
  private scratch: Buffer | undefined;

  constructor(
    private readonly db: Store,
    private readonly wal: Wal,
    private readonly options: CommitOptions,
    private readonly log: Logger,
    /** Called once if a batch fails: the store's state is then unknown and the master must stop. */
    private readonly onFatal: (err: ReplicatorError) => void,
  ) {}

  /** Commits validated writes (each under its own seq, consecutive); bytes are their key and value bytes. */
  submit(writes: readonly (readonly Mutation[])[], bytes: number): Promise<CommitResult> {
    return this.submitPrepared(prepareWrites(writes, bytes));
  }

  submitPrepared(writes: PreparedWrites): Promise<CommitResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new ReplicatorError(ErrorCode.SHUTTING_DOWN, 'the master is shutting down'));
    return new Promise((resolve, reject) => {
      this.queue.push({ writes, resolve, reject });
      if (!this.running) this.idle = this.drain();
    });
  }

  /** Stops taking writes and waits until every queued write is committed or failed. */
  async close(): Promise<void> {
    this.closing = true;
    await this.idle;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.failure) {
        const group = this.takeGroup();
        await this.commit(group);
      }
    } finally {
      this.running = false;
    }
  }

  private takeGroup(): Pending[] {
    const group: Pending[] = [];
    let entries = 0;
    let bytes = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0];
      const fits = entries + next.writes.count <= this.options.maxGroupEntries && bytes + next.writes.bytes <= this.options.maxGroupBytes;
      if (group.length > 0 && !fits) break;
      group.push(this.queue.shift()!);
      entries += next.writes.count;
      bytes += next.writes.bytes;
    }
    return group;
  }

  private async commit(group: Pending[]): Promise<void> {
    const firstSeq = this.wal.lastSeq + 1n;
    const commitTimeMs = Date.now();
    const requests = group.map((p) => p.writes);
    // Entries are encoded once, here, into the group's log chunks; these same bytes are
    // stored and streamed to every follower. The chunks and the data changes are one batch.
    this.scratch ??= Buffer.allocUnsafeSlow(CHUNK_SCRATCH_BYTES);
    const encoded = encodeChunks(firstSeq, commitTimeMs, requests, this.wal.lastChecksum, this.scratch);
    const { chunks, buf, starts, ends } = encoded;
    const lastSeq = firstSeq + BigInt(starts.length) - 1n;
    try {
      // A chained batch, built directly (see writeBatch for why not the array form).
      const batch = this.db.batch();
      try {
        for (const c of chunks) batch.put(logKey(c.lastSeq), c.bytes);
        // The data changes, read back from the entries just encoded (values are views).
        const visit = (kind: MutationKind, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => {
          const key = dataKeyOf(MASTER_DATA_GEN, buf, keyStart, keyEnd);
          if (kind === MutationKind.PUT) batch.put(key, buf.subarray(valueStart, valueEnd));
          else batch.del(key);
        };
        // An entry's body runs from ENTRY_BODY_OFFSET to its 4-byte checksum.
        for (let i = 0; i < starts.length; i++) forEachMutation(buf, starts[i] + ENTRY_BODY_OFFSET, ends[i] - 4, visit);
      } catch (err) {
        await batch.close();
        throw err;
      }
      await batch.write(writeOptions(this.options.sync));
    } catch (err) {
      // The batch may or may not be on disk: stop, and let recovery read the truth on restart.
      this.failure = new ReplicatorError(ErrorCode.STORE_FAILED, `write to the store failed: ${(err as Error).message}`, { cause: err });
      this.log.fatal({ err }, 'store write failed; refusing further writes');
      for (const p of [...group, ...this.queue.splice(0)]) p.reject(this.failure);
      this.onFatal(this.failure);
      return;
    }
    latencyTrace?.record(lastSeq);
    this.wal.appended(firstSeq, encoded, commitTimeMs);
    let next = firstSeq;
    for (const p of group) {
      const last = next + BigInt(p.writes.count) - 1n;
      p.resolve({ firstSeq: next, lastSeq: last });
      next = last + 1n;
    }
  }
}
