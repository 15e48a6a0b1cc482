import type { FollowerRegistry } from './follower-registry.js';

export interface AckOutcome {
  /** Durable followers that had applied the seq when the wait ended (may exceed the number asked for). */
  acked: number;
  /** acked >= the number asked for. */
  reached: boolean;
}

interface Waiter {
  seq: bigint;
  needed: number;
  resolve: (o: AckOutcome) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Writes waiting until enough followers have durably applied them (like Redis WAIT).
 *
 * A waiter is registered after its write committed, so the group committer never waits
 * for followers: other writes keep committing while any number of these wait. Each
 * advance of a durable follower's acknowledged seq re-checks the waiters: a waiter for
 * (seq, N) is released when the N-th highest durable acknowledged seq is >= seq.
 *
 * Invariant: once releaseAll() has run (the master role is closing), no wait outlasts it:
 * a write that commits afterwards (it was in the group committer when the close began)
 * is answered at once with the count so far, instead of waiting out its timeout while the
 * server's shutdown grace runs out and cancels the call without an answer.
 */
export class AckWaiters {
  private waiters: Waiter[] = [];
  private released = false;

  constructor(private readonly registry: FollowerRegistry) {
    registry.onAdvance((record) => {
      if (record.durable && this.waiters.length > 0) this.check();
    });
  }

  /** Waits up to timeoutMs for `needed` durable followers to have applied seq. */
  wait(seq: bigint, needed: number, timeoutMs: number): Promise<AckOutcome> {
    const acked = this.registry.durableAckCount(seq);
    if (acked >= needed || timeoutMs <= 0 || this.released) return Promise.resolve({ acked, reached: acked >= needed });
    return new Promise((resolve) => {
      const waiter: Waiter = { seq, needed, resolve, timer: undefined };
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        const n = this.registry.durableAckCount(seq);
        resolve({ acked: n, reached: n >= needed });
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Ends every wait now, and every later one at once, with the counts as they are (master shutdown). */
  releaseAll(): void {
    this.released = true;
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) {
      clearTimeout(w.timer);
      const n = this.registry.durableAckCount(w.seq);
      w.resolve({ acked: n, reached: n >= w.needed });
    }
  }

  private check(): void {
    const seqs = this.registry.durableAckedSeqs(); // highest first
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      const nth = seqs[w.needed - 1];
      if (nth !== undefined && nth >= w.seq) {
        clearTimeout(w.timer);
        w.resolve({ acked: seqs.filter((s) => s >= w.seq).length, reached: true });
      } else {
        still.push(w);
      }
    }
    this.waiters = still;
  }
}
