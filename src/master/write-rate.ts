/**
 * Seqs committed per second, averaged over a sliding window of whole seconds (the
 * current, partial second excluded so the rate does not dip at each second's start).
 * Fixed memory: one counter per second of the window.
 */
export class WriteRate {
  private readonly buckets: number[];
  private readonly stamps: number[];

  constructor(private readonly windowSeconds = 10) {
    this.buckets = new Array(windowSeconds + 1).fill(0);
    this.stamps = new Array(windowSeconds + 1).fill(-1);
  }

  record(count: number, nowMs = Date.now()): void {
    const sec = Math.floor(nowMs / 1000);
    const i = sec % this.buckets.length;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.buckets[i] = 0;
    }
    this.buckets[i] += count;
  }

  /** Per second, over the last windowSeconds complete seconds. */
  rate(nowMs = Date.now()): number {
    const now = Math.floor(nowMs / 1000);
    let total = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      const age = now - this.stamps[i];
      if (age >= 1 && age <= this.windowSeconds) total += this.buckets[i];
    }
    return total / this.windowSeconds;
  }
}
