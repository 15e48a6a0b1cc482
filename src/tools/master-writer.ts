import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { WriteRequest } from '../wire/generated/levelreplicator/v1/WriteRequest.js';
import type { WriteResponse__Output } from '../wire/generated/levelreplicator/v1/WriteResponse.js';

/** Sends one Write to the node at address with this deadline; a refusal rejects with its ReplicatorError. */
export type SendWrite = (address: string, request: WriteRequest, timeoutMs: number) => Promise<WriteResponse__Output>;

/** How often a write refused with WRITES_PAUSED (a switchover in progress) is tried again. */
export const PAUSED_RETRY_INTERVAL_MS = 50;

/** The leader as discovery (etcd) names it. */
export interface LeaderAddress {
  address: string;
  epoch: number;
  nodeId?: number;
}

export interface MasterWriterOptions {
  retryIntervalMs?: number;
  /** false: writes go only to the address given; a refusal naming another master is the answer (push-data --no-redirect). */
  redirect?: boolean;
  /** Called when writes move to another address (a redirect, or the master a pause named); `why` is the refusal's code. */
  onMove?: (from: string, to: string, why: ErrorCode) => void;
  /**
   * Discovery (push-data --etcd): the leader now, with its epoch; rejects (MASTER_UNAVAILABLE)
   * while none is elected or etcd cannot be read. With it, the writer starts at the leader
   * it names, and every refusal that wrote nothing is tried again until the deadline at the
   * leader it names then (see MasterWriter).
   */
  locate?: () => Promise<LeaderAddress>;
  /** Called when discovery moves writes to another leader, after the refusal that made the writer ask. */
  onLocate?: (leader: LeaderAddress, from: string | undefined, after: ReplicatorError | undefined) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** What one write call has done so far: its one redirect, and since when it waits. */
interface CallState {
  redirectedFrom?: string;
  waitingSince?: number;
}

/**
 * Writes through the master, following where the cluster says it is:
 *
 * - Refused with NOT_MASTER or STALE_EPOCH naming the master (`lr-master-address`): sent
 *   again, once, to that address. A refused write wrote nothing (a fenced master answers
 *   with these only writes that are not in the new master's history), so this cannot
 *   write twice. A second such refusal in the same call is the answer: no redirect loops.
 *   A write the node committed before it was deposed is sent on only when the node knows
 *   the new master lacks it (`lr-in-new-history: no`: the Follow notice named the fork).
 * - Refused with WRITES_PAUSED (a switchover is under way; nothing was written), or with
 *   NO_LEASE before it was written (`lr-written: no`: a master without the leader lease):
 *   tried again every retryIntervalMs until the call's deadline, at the master the refusal
 *   names once there is one.
 * - With discovery (locate): each of those retries goes to the leader etcd names then, and
 *   so do a NOT_MASTER or STALE_EPOCH that cannot be redirected (the node etcd names is
 *   still taking office) and a master that could not be reached at all (`sent: no`: the
 *   write never left this process); while etcd names no leader, the writer waits for one.
 *   A refusal that comes after the write was committed (`lr-written: yes`) is never sent
 *   again with discovery: after a failover through etcd the new leader may hold that write.
 *
 * Never retried, in any mode: a write whose answer was lost (a transport failure after it
 * was sent, a deadline): its outcome is unknown, and the error says so.
 *
 * Every request carries the newest epoch the writer knows (`epoch`: from the status
 * answers or the leader record it was started with, raised by every answer since), so a
 * master deposed without knowing it refuses (STALE_EPOCH) instead of acknowledging a write
 * the cluster will not keep (epoch 1, every cluster's first, is left out: it fences
 * nobody). The address writes went to last is kept for the next write.
 */
export class MasterWriter {
  private current: string | undefined;
  private known: number;
  private readonly retryIntervalMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  /** address: where writes go first; undefined with locate (the leader it names). */
  constructor(
    address: string | undefined,
    private readonly send: SendWrite,
    epoch = 0,
    private readonly opts: MasterWriterOptions = {},
  ) {
    if (address === undefined && !opts.locate) throw new Error('MasterWriter needs an address or a locate function');
    this.current = address;
    this.known = epoch;
    this.retryIntervalMs = opts.retryIntervalMs ?? PAUSED_RETRY_INTERVAL_MS;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Where the next write goes (undefined: discovery has not named a leader yet). */
  get address(): string | undefined {
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
    const call: CallState = {};
    let address = this.current;
    let after: ReplicatorError | undefined;
    for (;;) {
      address ??= await this.locate(deadline, call, after);
      const left = Math.max(1, deadline - this.now());
      try {
        const res = await this.send(address, this.withEpoch(request), left);
        this.learnEpoch(res.epoch);
        return res;
      } catch (err) {
        if (!isReplicatorError(err)) throw err;
        this.learnEpoch(Number(err.details.epoch));
        after = err;
        const named = err.details.masterAddress || undefined;
        const redirect = this.opts.redirect !== false;
        const discovery = this.opts.locate !== undefined;
        if (err.code === ErrorCode.NOT_MASTER || err.code === ErrorCode.STALE_EPOCH) {
          // Committed there before the refusal: sent again only when the node knows the new
          // master lacks it (lr-in-new-history: no); else a resend could write it twice.
          if (err.details.written === 'yes' && (discovery || err.details.inNewHistory !== 'no')) throw this.committedRefusal(err, address);
          if (named !== undefined && named !== address && call.redirectedFrom === undefined && redirect) {
            call.redirectedFrom = address;
            address = this.moveTo(address, named, err.code);
            continue;
          }
          if (!discovery || !redirect) throw this.explained(err, address, call.redirectedFrom);
          address = await this.retryLater(err, address, deadline, call);
          continue;
        }
        const notWritten = err.code === ErrorCode.WRITES_PAUSED || (err.code === ErrorCode.NO_LEASE && err.details.written === 'no');
        if (notWritten) {
          if (!discovery && named !== undefined && named !== address && redirect) address = this.moveTo(address, named, err.code);
          address = await this.retryLater(err, address, deadline, call);
          continue;
        }
        if (discovery && err.code === ErrorCode.MASTER_UNAVAILABLE && err.details.sent === 'no') {
          address = await this.retryLater(err, address, deadline, call);
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * After a refusal that wrote nothing: waits retryIntervalMs and returns where to try next
   * (the same address, or undefined: ask discovery), or throws the refusal once another try
   * would not fit before the deadline.
   */
  private async retryLater(err: ReplicatorError, address: string, deadline: number, call: CallState): Promise<string | undefined> {
    call.waitingSince ??= this.now();
    // Another try needs the wait and some time for the call itself; otherwise the refusal is the answer.
    if (deadline - this.now() < 2 * this.retryIntervalMs) throw this.gaveUp(err, address, call);
    await this.sleep(this.retryIntervalMs);
    return this.opts.locate ? undefined : address;
  }

  /** The leader discovery names, asked until it names one or the deadline; writes go there from now on. */
  private async locate(deadline: number, call: CallState, after: ReplicatorError | undefined): Promise<string> {
    for (;;) {
      let failure: ReplicatorError;
      try {
        const leader = await this.opts.locate!();
        this.learnEpoch(leader.epoch);
        if (leader.address !== this.current) {
          this.opts.onLocate?.(leader, this.current, after);
          this.current = leader.address;
        }
        return leader.address;
      } catch (err) {
        if (!isReplicatorError(err)) throw err;
        failure = err;
      }
      call.waitingSince ??= this.now();
      if (deadline - this.now() < 2 * this.retryIntervalMs) throw this.gaveUp(failure, undefined, call);
      await this.sleep(this.retryIntervalMs);
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

  /** The refusal that ended the retries, saying how long they went on; every try was refused before anything was written. */
  private gaveUp(err: ReplicatorError, address: string | undefined, call: CallState): ReplicatorError {
    const waited = this.now() - (call.waitingSince ?? this.now());
    const why =
      err.code === ErrorCode.WRITES_PAUSED && !this.opts.locate
        ? `writes stayed paused at ${address} for ${waited} ms, until the call's deadline`
        : `no master took the write in ${waited} ms of retries, until the call's deadline${address ? `; last tried at ${address}` : ''}`;
    return new ReplicatorError(err.code, `${err.message} (${why}; nothing was written)`, { cause: err, details: err.details });
  }

  /** A deposed master's refusal of a write it had committed: with failover through etcd the new leader may have it. */
  private committedRefusal(err: ReplicatorError, address: string): ReplicatorError {
    return new ReplicatorError(
      err.code,
      `${err.message} (${address} committed the write before it refused to acknowledge it, and the new master may hold it: not sent again; check with get-data before retrying)`,
      { cause: err, details: err.details },
    );
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
