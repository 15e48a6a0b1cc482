/**
 * Callers waiting for a position (a follower's applied seq, say) to reach a seq. The
 * owner of the position calls advance() after each durable step; waiting costs nothing
 * when nobody waits, and advance() touches only the waiters it releases.
 *
 * Invariant: every waiter in the list waits for a seq above `reached`.
 */
interface Waiter {
  seq: bigint;
  resolve: (reached: boolean) => void;
  timer: NodeJS.Timeout | undefined;
}

export class SeqWaiters {
  private waiters: Waiter[] = [];

  constructor(private reached: bigint) {}

  get position(): bigint {
    return this.reached;
  }

  /** Resolves true once the position is at least seq, or false after timeoutMs. */
  wait(seq: bigint, timeoutMs: number): Promise<boolean> {
    if (seq <= this.reached) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter: Waiter = { seq, resolve, timer: undefined };
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, Math.min(timeoutMs, 2 ** 31 - 1));
      this.waiters.push(waiter);
    });
  }

  /** Moves the position to seq (never backwards) and releases every waiter it satisfies. */
  advance(seq: bigint): void {
    if (seq <= this.reached) return;
    this.reached = seq;
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.seq <= seq) {
        clearTimeout(w.timer);
        w.resolve(true);
      } else {
        still.push(w);
      }
    }
    this.waiters = still;
  }

  /**
   * Sets the position without releasing anyone (e.g. a follower whose store was replaced
   * by an older snapshot); waiters keep waiting for their seq.
   */
  reset(seq: bigint): void {
    this.reached = seq;
  }

  /** Releases every waiter with false (shutdown). */
  cancelAll(): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.waiters = [];
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
