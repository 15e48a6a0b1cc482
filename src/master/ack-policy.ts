import type { AckPolicy__Output } from '../wire/generated/levelreplicator/v1/AckPolicy.js';

/** The master's default acknowledgement policy (--ack-followers, --ack-timeout-ms). */
export interface AckPolicy {
  /** Durable followers that must have applied a write before it is acknowledged; 0 = async. */
  followers: number;
  timeoutMs: number;
}

export const DEFAULT_ACK_TIMEOUT_MS = 2_000;
/** setTimeout's ceiling; longer waits are clamped to it (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The policy one Write request gets: its own `ack` if it has one (a 0 timeout there
 * means the master's default timeout), else the master's default; the wait is then cut
 * to what the call's deadline leaves (budgetMs) so the answer, with its count, always
 * reaches the client.
 */
export function resolveAckPolicy(requested: AckPolicy__Output | null, defaults: AckPolicy, budgetMs: number): AckPolicy {
  const followers = requested ? requested.followers : defaults.followers;
  const timeoutMs = requested && requested.timeoutMs > 0 ? requested.timeoutMs : defaults.timeoutMs;
  return { followers, timeoutMs: Math.max(0, Math.min(timeoutMs, budgetMs, MAX_TIMER_MS)) };
}
