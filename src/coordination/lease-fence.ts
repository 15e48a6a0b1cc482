import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * Self-fencing arithmetic for a lease holder (pure: the clock is injected).
 *
 * etcd expires a lease TTL seconds after it last *received* a keepalive for it (or the
 * grant), on etcd's clock. A keepalive sent at time s and answered with a live TTL was
 * received after s, so the lease lives on etcd at least until s + TTL. The holder only
 * knows s on its own monotonic clock, so it stops acting as the holder at
 *
 *   deadline = s + TTL - margin
 *
 * where s is the send time of the newest keepalive etcd confirmed, and the margin covers
 * what the arithmetic cannot see: the two clocks running at slightly different rates, the
 * time between a caller's canAcknowledge() and its reply leaving the process, and timers
 * firing late. Invariant: deadline < the earliest moment etcd can expire the lease, so no
 * successor can be elected (etcd elects only after the key is gone) while canAcknowledge()
 * is true. Renewals only ever move the deadline forward: a late answer to an old keepalive
 * confirms its own (older) send time and changes nothing.
 *
 * The clock must be monotonic (performance.now(), process.hrtime): a wall clock set back
 * or forward would move the deadline with it.
 */

export type MonotonicClock = () => number;

export const monotonicNow: MonotonicClock = () => performance.now();

/** etcd leases are whole seconds, at least 1. */
export function checkTtlSeconds(ttlSeconds: number): number {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 3600) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `a lease TTL is a whole number of seconds from 1 to 3600, got ${ttlSeconds}`);
  }
  return ttlSeconds;
}

/**
 * The default margin: a third of the TTL, at least a second. With keepalives every TTL/4
 * (leader-lease.ts) and a TTL of 3 s or more, one lost keepalive does not fence the holder
 * and two in a row do. A TTL of 1 s leaves no room for a 1 s margin: it needs an explicit,
 * smaller one (LeaseFence refuses a margin that is not below the TTL).
 */
export function defaultMarginMs(ttlMs: number): number {
  return Math.max(1_000, ttlMs / 3);
}

export class LeaseFence {
  readonly ttlMs: number;
  readonly marginMs: number;
  /** The send time of the newest keepalive (or grant) etcd confirmed; -Infinity before any. */
  private confirmedSentAt = -Infinity;
  private revoked = false;

  constructor(ttlSeconds: number, marginMs: number | undefined, readonly clock: MonotonicClock = monotonicNow) {
    this.ttlMs = checkTtlSeconds(ttlSeconds) * 1000;
    this.marginMs = marginMs ?? defaultMarginMs(this.ttlMs);
    if (!(this.marginMs > 0 && this.marginMs < this.ttlMs)) {
      throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `the fencing margin must be above 0 and below the lease TTL (${this.ttlMs} ms), got ${this.marginMs} ms`);
    }
  }

  /**
   * etcd confirmed the lease alive in answer to a request sent at sentAt (clock time, read
   * before the request left). Returns whether the deadline moved.
   */
  confirm(sentAt: number): boolean {
    if (this.revoked || sentAt <= this.confirmedSentAt) return false;
    this.confirmedSentAt = sentAt;
    return true;
  }

  /** The lease is gone for good (expired, revoked, resigned): no confirmation counts any more. */
  revoke(): void {
    this.revoked = true;
    this.confirmedSentAt = -Infinity;
  }

  /** The send time of the newest confirmed keepalive; -Infinity before any. */
  get lastConfirmedSentAt(): number {
    return this.confirmedSentAt;
  }

  /** When the holder must stop acting as one (clock time); -Infinity before any confirmation. */
  deadline(): number {
    return this.confirmedSentAt + this.ttlMs - this.marginMs;
  }

  /** Whether the holder may still act (acknowledge a write): strictly before the deadline. */
  canAct(now = this.clock()): boolean {
    return now < this.deadline();
  }

  /** How long it may still act, in ms (0 once fenced). */
  remainingMs(now = this.clock()): number {
    return Math.max(0, this.deadline() - now);
  }

  /** The earliest moment etcd could expire the lease, on this clock (the deadline plus the margin). */
  earliestExpiry(): number {
    return this.confirmedSentAt + this.ttlMs;
  }
}
