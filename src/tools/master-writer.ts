import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { WriteRequest } from '../wire/generated/levelreplicator/v1/WriteRequest.js';
import type { WriteResponse__Output } from '../wire/generated/levelreplicator/v1/WriteResponse.js';

/** Sends one Write to the node at address with this deadline; a refusal rejects with its ReplicatorError. */
export type SendWrite = (address: string, request: WriteRequest, timeoutMs: number) => Promise<WriteResponse__Output>;

/** How often a write refused with WRITES_PAUSED (a switchover in progress) is tried again. */
export const PAUSED_RETRY_INTERVAL_MS = 50;

export interface MasterWriterOptions {
  retryIntervalMs?: number;
  /** false: writes go only to the address given; a refusal naming another master is the answer (push-data --no-redirect). */
  redirect?: boolean;
  /** Called when writes move to another address (a redirect, or the master a pause named); `why` is the refusal's code. */
  onMove?: (from: string, to: string, why: ErrorCode) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Writes through the master, following where the cluster says it is:
 *
 * - Refused with NOT_MASTER or STALE_EPOCH naming the master (`lr-master-address`): sent
 *   again, once, to that address. A refused write wrote nothing (a fenced master answers
 *   with these only writes that are not in the new master's history), so this cannot
 *   write twice. A second such refusal in the same call is the answer: no redirect loops.
 * - Refused with WRITES_PAUSED (a switchover is under way; nothing was written): tried
 *   again every retryIntervalMs until the call's deadline, at the master the refusal
 *   names once there is one.
 *
 * Every request carries the newest epoch the writer knows (`epoch`: from the status
 * answers it was started with, raised by every answer since), so a master deposed
 * without knowing it refuses (STALE_EPOCH) instead of acknowledging a write the cluster
 * will not keep (epoch 1, every cluster's first, is left out: it fences nobody). The address writes went to last is kept for the next write.
 */
export class MasterWriter {
  private current: string;
  private known: number;
  private readonly retryIntervalMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    address: string,
    private readonly send: SendWrite,
    epoch = 0,
    private readonly opts: MasterWriterOptions = {},
  ) {
    this.current = address;
    this.known = epoch;
    this.retryIntervalMs = opts.retryIntervalMs ?? PAUSED_RETRY_INTERVAL_MS;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Where the next write goes. */
  get address(): string {
    return this.current;
  }

  /** The newest epoch known: what the next write carries. */
  get epoch(): number {
    return this.known;
  }

  /** Raises the epoch the writer knows (never lowers it). */
  learnEpoch(epoch: number | undefined): void {
    if (epoch !== undefined && Number.isSafeInteger(epoch) && epoch > this.known) this.known = epoch;
  }

  /** One write call: every attempt, redirect and retry within timeoutMs. */
  async write(request: Omit<WriteRequest, 'epoch'>, timeoutMs: number): Promise<WriteResponse__Output> {
    const deadline = this.now() + timeoutMs;
    let address = this.current;
    let redirectedFrom: string | undefined;
    let pausedSince: number | undefined;
    for (;;) {
      const left = Math.max(1, deadline - this.now());
      try {
        const res = await this.send(address, this.withEpoch(request), left);
        this.learnEpoch(res.epoch);
        return res;
      } catch (err) {
        if (!isReplicatorError(err)) throw err;
        this.learnEpoch(Number(err.details.epoch));
        const named = err.details.masterAddress || undefined;
        if (err.code === ErrorCode.NOT_MASTER || err.code === ErrorCode.STALE_EPOCH) {
          if (named === undefined || named === address || redirectedFrom !== undefined || this.opts.redirect === false) throw this.explained(err, address, redirectedFrom);
          redirectedFrom = address;
          address = this.moveTo(address, named, err.code);
          continue;
        }
        if (err.code === ErrorCode.WRITES_PAUSED) {
          pausedSince ??= this.now();
          if (named !== undefined && named !== address && this.opts.redirect !== false) address = this.moveTo(address, named, err.code);
          // Another try needs the wait and some time for the call itself; otherwise the pause is the answer.
          if (deadline - this.now() < 2 * this.retryIntervalMs) {
            throw new ReplicatorError(err.code, `${err.message} (writes stayed paused at ${address} for ${this.now() - pausedSince} ms, until the call's deadline; nothing was written)`, {
              cause: err,
              details: err.details,
            });
          }
          await this.sleep(this.retryIntervalMs);
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * The request with the newest epoch known, but without epoch 1 (every cluster's first,
   * below no master): it would fence nobody, and masters from before epochs refuse the
   * field (an explicit 0 is still encoded, so the field is left out).
   */
  private withEpoch(request: Omit<WriteRequest, 'epoch'>): WriteRequest {
    return this.known > 1 ? { ...request, epoch: this.known } : { ...request };
  }

  private moveTo(from: string, to: string, why: ErrorCode): string {
    if (this.current !== to) {
      this.current = to;
      this.opts.onMove?.(from, to, why);
    }
    return to;
  }

  /** The last refusal, saying where the write went (a redirect that was not followed: why not). */
  private explained(err: ReplicatorError, address: string, redirectedFrom: string | undefined): ReplicatorError {
    let note = '';
    if (redirectedFrom !== undefined) note = ` (redirected once, from ${redirectedFrom} to ${address}; not following a second redirect)`;
    else if (err.details.masterAddress === address) note = ` (it names itself as the master: not sent again)`;
    else if (!err.details.masterAddress) note = ' (it names no master to send the write to)';
    // Redirects off (--no-redirect): the refusal as the node worded it, as before redirects existed.
    return new ReplicatorError(err.code, `${err.message}${note}`, { cause: err, details: err.details });
  }
}
