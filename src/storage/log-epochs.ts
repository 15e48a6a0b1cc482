import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { frozenHistory, lastEpoch, sameHistory, startEpoch, validateHistory, type EpochHistory } from './epoch-history.js';

/**
 * A log's epoch history and the two ways it changes, with the same rules for every log
 * implementation (SegmentLog keeps it in its `epochs` file, MemoryLog in a meta record):
 * `persist` makes a new history durable, and the history in memory changes only once it
 * resolved, so a failed or interrupted change leaves the old one, in memory and on disk.
 */
export class LogEpochs {
  private current: EpochHistory;

  constructor(
    history: EpochHistory,
    private readonly persist: (h: EpochHistory) => Promise<void>,
  ) {
    this.current = frozenHistory(history);
  }

  get history(): EpochHistory {
    return this.current;
  }

  /** The newest epoch. */
  get epoch(): number {
    return lastEpoch(this.current);
  }

  /** The history as read again from disk (a reopen). */
  reset(history: EpochHistory): void {
    this.current = frozenHistory(history);
  }

  /**
   * Begins `epoch` at firstSeq, which must be nextSeq (the next seq the log will write),
   * for an epoch above the newest (INVALID_ARGUMENT otherwise); see startEpoch.
   */
  async begin(epoch: number, firstSeq: bigint, nextSeq: bigint): Promise<void> {
    if (firstSeq !== nextSeq) {
      throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `cannot begin epoch ${epoch} at seq ${firstSeq}: the next seq of the log is ${nextSeq}`);
    }
    const next = startEpoch(this.current, epoch, firstSeq);
    await this.persist(next);
    this.current = next;
  }

  /**
   * Replaces the history with an upstream's: INVALID_ARGUMENT for one that breaks the
   * EpochHistory invariant, STALE_EPOCH for one whose newest epoch is below this one's.
   * The same history again persists nothing.
   */
  async adopt(history: EpochHistory): Promise<void> {
    validateHistory(history, ErrorCode.INVALID_ARGUMENT, "upstream's epoch history");
    if (lastEpoch(history) < this.epoch) {
      throw new ReplicatorError(ErrorCode.STALE_EPOCH, `refusing an epoch history that ends at epoch ${lastEpoch(history)}: this log is at epoch ${this.epoch}`);
    }
    if (sameHistory(history, this.current)) return;
    const next = frozenHistory(history);
    await this.persist(next);
    this.current = next;
  }
}
