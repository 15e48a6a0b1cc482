import type { ClusterView } from '../common/cluster-view.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * With --etcd: whether this node holds the leader lease and etcd cannot yet have expired it
 * (src/coordination/leader-lease.ts canAcknowledge). Read right before each write is taken
 * and again right before its answer leaves.
 */
export interface LeaseGate {
  canAcknowledge(): boolean;
  /** Why not, for the error message: "not elected yet", "could not renew the lease", ... */
  why(): string;
}

/** How long PauseWrites holds writes when the request names no timeout. */
export const DEFAULT_PAUSE_MS = 10_000;

/**
 * Whether this master may take and acknowledge writes: the fencing of epochs and the pause
 * of a switchover, checked by every Write before anything is written and again before its
 * answer is sent.
 *
 * - deposed: the node learned of an epoch newer than its own (a Follow naming a newer
 *   master, a client's or a subscriber's newer epoch). Final for this master role: from
 *   that instant no write is acknowledged, also one that was committed before and is still
 *   waiting for its answer (it will be in the rollback file when the node rejoins).
 * - paused: a switchover is handing writes over; WRITES_PAUSED (retryable) until resumed or
 *   the pause times out.
 *
 * - no lease (with --etcd): the node does not hold the leader lease, or could not renew it
 *   in time; NO_LEASE (retryable) until etcd confirms the lease again.
 *
 * Invariant: once deposed, check() always throws.
 * Invariant: with a lease gate, no write is answered as acknowledged unless the gate said
 * yes after the write was committed (and its followers' acknowledgements counted).
 */
export class WriteFence {
  private pausedUntil = 0;
  private deposedAt: number | undefined;
  /** Writes up to this seq are in the new master's history (a switchover handed them over): still answerable. */
  private handedOverSeq = 0n;
  /** The newer epoch's first seq is known (a Follow notice names it): so is which writes the new master lacks. */
  private forkKnown = false;
  private readonly off: () => void;
  private lease: LeaseGate | undefined;

  constructor(
    private readonly cluster: ClusterView,
    /** This master's epoch (its log's). */
    private readonly epoch: () => number,
  ) {
    if (cluster.seenEpoch > epoch()) this.deposedAt = cluster.seenEpoch;
    this.off = cluster.onNewer((e) => {
      if (e > this.epoch()) this.deposedAt ??= e;
    });
  }

  get deposed(): boolean {
    return this.deposedAt !== undefined;
  }

  get paused(): boolean {
    return this.pausedUntil > Date.now();
  }

  /**
   * A client or peer reports an epoch: a newer one than ours deposes this master at once.
   * `firstSeq`, the newer epoch's first seq when known (a switchover), lets writes below it
   * still be answered: they are in the new master's history.
   */
  observe(epoch: number, masterAddress = '', firstSeq = 0n): void {
    this.cluster.observe(epoch, masterAddress);
    if (epoch <= this.epoch()) return;
    if (this.deposedAt === undefined && firstSeq > 0n) {
      this.handedOverSeq = firstSeq - 1n;
      this.forkKnown = true;
    }
    this.deposedAt ??= epoch;
  }

  /** Every write from now on needs the lease (--etcd); undefined: none needed. */
  setLeaseGate(gate: LeaseGate | undefined): void {
    this.lease = gate;
  }

  pause(ms: number): void {
    this.pausedUntil = Date.now() + ms;
  }

  resume(): void {
    this.pausedUntil = 0;
  }

  /**
   * Throws unless a write may be taken (or answered) now. `clientEpoch`: the newest epoch
   * the client knows; one above ours deposes this master first.
   */
  check(clientEpoch = 0): void {
    if (clientEpoch > this.epoch()) this.observe(clientEpoch);
    const master = this.cluster.masterAddress;
    // `written: no` (lr-written): refused before anything was written, so a client may send it again.
    const details: Record<string, string> = master ? { masterAddress: master, written: 'no' } : { written: 'no' };
    if (this.deposedAt !== undefined) {
      const where = master ? `; the master is at ${master}` : '';
      throw new ReplicatorError(
        clientEpoch > this.epoch() ? ErrorCode.STALE_EPOCH : ErrorCode.NOT_MASTER,
        `this node was the master of epoch ${this.epoch()} and was deposed by epoch ${this.cluster.seenEpoch}${where}; it acknowledges no write`,
        { details },
      );
    }
    if (this.lease && !this.lease.canAcknowledge()) {
      throw new ReplicatorError(ErrorCode.NO_LEASE, `this node does not hold the leader lease (${this.lease.why()}); nothing was written, retry at the leader${master ? ` (${master})` : ''}`, { details });
    }
    if (this.paused) {
      throw new ReplicatorError(ErrorCode.WRITES_PAUSED, `writes are paused for a switchover${master ? `; the new master is at ${master}` : ''}; nothing was written, retry`, { details });
    }
  }

  /**
   * Before a committed write is answered: throws once deposed, unless the write is one the
   * new master's history holds. Never throws for a pause (the write is committed and a
   * switchover waits for it; an error would invite a retry that writes it twice).
   */
  checkAnswer(lastSeq: bigint): void {
    const master = this.cluster.masterAddress;
    // `written: yes` (lr-written): the write is committed here, so a blind retry could write it twice.
    const details: Record<string, string> = master ? { masterAddress: master, written: 'yes' } : { written: 'yes' };
    if (this.deposedAt === undefined && this.lease && !this.lease.canAcknowledge()) {
      throw new ReplicatorError(
        ErrorCode.NO_LEASE,
        `this node lost the leader lease (${this.lease.why()}) before it could acknowledge seqs up to ${lastSeq}; they are committed here and survive only if the next leader has them (otherwise they go to this node's rollback file)`,
        { details },
      );
    }
    if (this.deposedAt === undefined || lastSeq <= this.handedOverSeq) return;
    // `in-new-history` (lr-in-new-history): "no" when the newer epoch's first seq is known
    // and the write is past it (a client may send it to the new master once); "unknown"
    // when deposed without it (a client's or a subscriber's epoch, or etcd naming a new
    // leader): the new master may hold the write, so it must not be sent again blindly.
    const where = this.forkKnown
      ? "they are not in the new master's history and will be in this node's rollback file"
      : "the new master may or may not hold them (if not, they will be in this node's rollback file): check before writing them again";
    throw new ReplicatorError(
      ErrorCode.NOT_MASTER,
      `this node was deposed (epoch ${this.cluster.seenEpoch}) before it could acknowledge seqs up to ${lastSeq}; ${where}${master ? `; the master is at ${master}` : ''}`,
      { details: { ...details, inNewHistory: this.forkKnown ? 'no' : 'unknown' } },
    );
  }

  close(): void {
    this.off();
  }
}
