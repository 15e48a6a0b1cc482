/**
 * Capped exponential backoff with jitter, for reconnect loops. Jitter spreads the
 * reconnects of many followers after a master restart so they do not arrive together.
 */
export const INITIAL_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 5_000;
export const BACKOFF_MULTIPLIER = 1.6;
export const BACKOFF_JITTER = 0.2;

export class Backoff {
  private nextBaseMs: number;
  constructor(
    private readonly initialMs = INITIAL_BACKOFF_MS,
    private readonly maxMs = MAX_BACKOFF_MS,
    private readonly random: () => number = Math.random,
  ) {
    this.nextBaseMs = initialMs;
  }

  /** The delay before the next attempt; each call grows the base up to maxMs. */
  next(): number {
    const base = this.nextBaseMs;
    this.nextBaseMs = Math.min(this.maxMs, base * BACKOFF_MULTIPLIER);
    const jitter = base * BACKOFF_JITTER * (this.random() * 2 - 1);
    return Math.max(0, Math.min(this.maxMs, Math.round(base + jitter)));
  }

  /** Call after a success so the next failure starts again from the initial delay. */
  reset(): void {
    this.nextBaseMs = this.initialMs;
  }
}
