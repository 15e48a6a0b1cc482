/** The LevelDB operations of a store that a StoreFaults seam is consulted about. */
export type StoreOperation = 'append' | 'write' | 'clear' | 'open' | 'close';

/**
 * Failure injection: a TEST SEAM, which production never sets. A store given one consults
 * it around each operation it makes: a log append (`append`: the segment write and its
 * fdatasync) and, on its LevelDB handle, batch writes, range clears, and the close and open
 * of a reopen after a failed write:
 *
 * - before(op) may throw to fail the operation before it touches LevelDB;
 * - after(op), called once the operation succeeded, may throw to fail it although it took
 *   effect (a write whose data reached the store and whose fsync then failed).
 *
 * What they throw is handled exactly like an error from LevelDB, so everything above the
 * LevelDB call (the failed-handle rules, the reopen, the position read back) runs as in
 * production, on a real store. Tests also use the calls to see what the store did.
 */
export interface StoreFaults {
  before(op: StoreOperation): void;
  after(op: StoreOperation): void;
}
