import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { ChainedBatch } from './apply-batch.js';
import { reopenSpaceShortfall, writeBatch, writeOptions, type BatchOp, type Store } from './level-store.js';
import type { StoreFaults } from './store-faults.js';

/**
 * The failed-handle rule of a replica's LevelDB store: every write goes through here, and
 * once one fails (disk full, I/O error) nothing more is written through that handle until
 * it has been closed and reopened.
 *
 * Why: LevelDB cannot be trusted to write on after a failure. A record that failed half
 * way (ENOSPC) stays torn in its write-ahead log, and records written after it are
 * misframed and dropped when the log is replayed on the next open — applied seqs silently
 * lost after they were reported. Reopening makes LevelDB's recovery read what is really on
 * disk; the owner then reads its position back before anything else is written.
 */
export class GuardedLevelStore {
  private mustReopen = false;
  /** The reopen under way, if any (the subscriber and a background clear may both ask). */
  private reopening: Promise<void> | undefined;

  constructor(
    private readonly db: Store,
    private readonly faults: StoreFaults | undefined,
  ) {}

  /** Whether a write failed since the last reopen. */
  get failed(): boolean {
    return this.mustReopen;
  }

  /** Records a failure seen elsewhere (the log, a clear): the handle must be reopened. */
  markFailed(): void {
    this.mustReopen = true;
  }

  /** One batch write; STORE_FAILED naming `what` on failure (or when a write failed before). */
  async write(ops: BatchOp[], { sync }: { sync: boolean }, what: string): Promise<void> {
    this.refuseIfFailed(what);
    try {
      this.faults?.before('write');
      await writeBatch(this.db, ops, { sync });
      this.faults?.after('write');
    } catch (err) {
      this.mustReopen = true;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * write() for a chained batch filled by staging, possibly while another write ran:
   * refused (dropped, unwritten) if any write failed since, so nothing goes through a
   * failed handle.
   */
  async writeFilledBatch(batch: ChainedBatch, sync: boolean, what: string): Promise<void> {
    if (this.mustReopen) {
      await batch.close();
      this.refuseIfFailed(what);
    }
    try {
      this.faults?.before('write');
      await batch.write(writeOptions(sync));
      this.faults?.after('write');
    } catch (err) {
      this.mustReopen = true;
      await batch.close(); // a batch refused before its write is released (after one, a no-op)
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: the store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** One LevelDB range deletion (callers handle failures). */
  async clearRange(range: { gte: Buffer; lt: Buffer }): Promise<void> {
    this.faults?.before('clear');
    await this.db.clear(range);
    this.faults?.after('clear');
  }

  /**
   * Makes the handle writable again after a failed write: closes and reopens LevelDB, then
   * runs `reload` (the owner reads its position back), and only then allows writes again
   * (and calls what reload returned). Throws STORE_FAILED while that is impossible (the
   * disk is still full); the caller retries with backoff. Until there is room to reopen,
   * the store stays open for reads.
   */
  async ensureWritable(reload: () => Promise<() => void>): Promise<void> {
    if (!this.mustReopen) return;
    this.reopening ??= this.reopen(reload).finally(() => (this.reopening = undefined));
    await this.reopening;
  }

  private refuseIfFailed(what: string): void {
    if (this.mustReopen) throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot ${what}: another store write failed meanwhile; the store is reopened first`);
  }

  private async reopen(reload: () => Promise<() => void>): Promise<void> {
    const short = await reopenSpaceShortfall(this.db);
    if (short) {
      throw new ReplicatorError(
        ErrorCode.STORE_FAILED,
        `the store is still out of space after a failed write: ${short.free} bytes free in ${this.db.location}, reopening it needs about ${short.needed}; still serving reads`,
      );
    }
    try {
      if (this.db.status === 'open') {
        this.faults?.before('close');
        await this.db.close();
        this.faults?.after('close');
      }
      this.faults?.before('open');
      await this.db.open();
      this.faults?.after('open');
    } catch (err) {
      const cause = (err as { cause?: Error }).cause;
      throw new ReplicatorError(ErrorCode.STORE_FAILED, `cannot reopen the store after a failed write: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}`, { cause: err });
    }
    const done = await reload();
    this.mustReopen = false;
    done();
  }
}
