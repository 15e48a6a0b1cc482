import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Mutation } from '../wire/entry-codec.js';
import { prepareWrites, type PreparedWrites } from '../wire/prepared-writes.js';
import type { MasterStore } from '../storage/interfaces.js';

export interface CommitOptions {
  /** fdatasync every group's log append before acknowledging it (default true). */
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
 * (up to the limits), so concurrent clients share one log write and one fdatasync. Each
 * group is one commitGroup(): its log entries durable first, then its data changes, so
 * after a crash the store is at most behind its log, and recovery replays the rest.
 */
export class GroupCommitter {
  private queue: Pending[] = [];
  private running = false;
  private failure: ReplicatorError | undefined;
  private closing = false;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: MasterStore,
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

  /** Waits until every write submitted so far is committed or failed (switchover, once new writes are paused). */
  settled(): Promise<void> {
    return this.idle;
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
    const requests = group.map((p) => p.writes);
    let firstSeq: bigint;
    try {
      ({ firstSeq } = await this.store.commitGroup(requests, Date.now(), this.options.sync));
    } catch (err) {
      // The batch may or may not be on disk: stop, and let recovery read the truth on restart.
      this.failure = new ReplicatorError(ErrorCode.STORE_FAILED, `write to the store failed: ${(err as Error).message}`, { cause: err });
      this.log.fatal({ err }, 'store write failed; refusing further writes');
      for (const p of [...group, ...this.queue.splice(0)]) p.reject(this.failure);
      this.onFatal(this.failure);
      return;
    }
    let next = firstSeq;
    for (const p of group) {
      const last = next + BigInt(p.writes.count) - 1n;
      p.resolve({ firstSeq: next, lastSeq: last });
      next = last + 1n;
    }
  }
}
