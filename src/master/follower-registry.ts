import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { SlotRecord } from '../storage/interfaces.js';

/**
 * A follower's replication state as the master sees it (shown by Status and the
 * lr_master_followers{state} metric):
 *
 *   connecting   -> subscribed; its position is being checked
 *   snapshot     -> being sent a snapshot of the master's store
 *   catching_up  -> streaming entries committed before it subscribed (or before its snapshot)
 *   streaming    -> has been sent everything once (like PostgreSQL's walsender); stays
 *                   here while connected, even if it falls behind again
 *   disconnected -> no open stream
 */
export const FOLLOWER_STATES = ['connecting', 'snapshot', 'catching_up', 'streaming', 'disconnected'] as const;
export type FollowerState = (typeof FOLLOWER_STATES)[number];

/** What the master knows about one follower; its slot survives restarts of the master. */
export interface FollowerRecord {
  id: number;
  /**
   * The master accepted a subscription of this follower, in this run or an earlier one
   * (it was streamed the log or sent a snapshot): it has a replication slot, which is
   * persisted and held by log retention. False only while a first subscription is being
   * checked; a refused one leaves no record behind.
   */
  hasSlot: boolean;
  state: FollowerState;
  /** Master clock (epoch ms) of the last state change. */
  stateSinceMs: number;
  /** True while a stream is open (every state but disconnected). */
  connected: boolean;
  /** Peer address of the current (or last) stream. */
  address: string;
  /** Where the follower serves reads, as it told us. */
  readAddress: string;
  /** The follower fsyncs each applied batch before acknowledging it (--sync): its acks count for write acknowledgement. */
  durable: boolean;
  /**
   * Slot position: the follower holds (or is being sent a snapshot of) everything up to
   * appliedSeq, so the log keeps appliedSeq + 1 on. Invariant: appliedSeq <= master lastSeq.
   */
  appliedSeq: bigint;
  /**
   * Highest seq the follower itself reported as applied (durably so if `durable`), or
   * that the master verified when the stream started. Status, lag, min-followers and
   * write acknowledgement use this, never the slot position of a snapshot not yet
   * installed. Invariant: ackedSeq <= sentSeq once the stream has started.
   */
  ackedSeq: bigint;
  /** Highest seq sent on the current stream (a snapshot at seq S counts as sending S). */
  sentSeq: bigint;
  bytesSent: number;
  lastAckTimeMs: number;
  connectedAtMs: number;
  /** Why the last subscription was refused or failed; '' if it was not. */
  lastError: string;
  /** The follower fell behind the retention cap: the log no longer waits for it. */
  slotLost: boolean;
  snapshotting: boolean;
}

type Listener = (record: FollowerRecord) => void;

/**
 * Followers known to the master, with a replication slot each: the log keeps the entries
 * a registered follower still needs (up to the retention cap). At most one stream per
 * follower id: a second subscriber with the same id is refused while the first is
 * connected, so two processes can never both believe they are follower N.
 *
 * Lifecycle of one subscription: attach() (connecting) -> startStream() once its position
 * is verified (catching_up or streaming), or beginSnapshot() (snapshot) -> endSnapshot()
 * (catching_up) -> detach() (disconnected). Listeners hear every advance of an
 * acknowledged seq (write acknowledgement waits on them) and every state change.
 *
 * A follower gets a slot only when the master accepts its subscription (startStream() or
 * beginSnapshot()). A subscription detached before that (refused: FOLLOWER_AHEAD, an
 * invalid position, no snapshot could be taken, ...) changes nothing the master knew: a new
 * id leaves no record, a known follower's record and slot are what they were before
 * (with the refusal as its lastError).
 */
export class FollowerRegistry {
  private readonly records = new Map<number, FollowerRecord>();
  /**
   * Subscriptions attached but not yet accepted, each with the record it replaced (the
   * follower's slot from before), or undefined for a follower the master did not know.
   */
  private readonly pending = new Map<FollowerRecord, FollowerRecord | undefined>();
  /** Slot positions changed since the last persist(). */
  private dirty = false;
  private readonly advanceListeners: Listener[] = [];
  private readonly stateListeners: Listener[] = [];

  /** A registry of the slots persisted by earlier runs (their followers start disconnected). */
  static fromSlots(slots: readonly SlotRecord[]): FollowerRegistry {
    const registry = new FollowerRegistry();
    for (const s of slots) registry.records.set(s.followerId, blank(s.followerId, s.appliedSeq, s.lost));
    return registry;
  }

  /**
   * A follower subscribed. Its reported position is not trusted, and a follower the master
   * did not know gets no slot, until startStream() or beginSnapshot().
   */
  attach(id: number, address: string, readAddress: string, durable: boolean): FollowerRecord {
    const existing = this.records.get(id);
    if (existing?.connected) {
      throw new ReplicatorError(
        ErrorCode.DUPLICATE_FOLLOWER,
        `follower ${id} is already connected from ${existing.address}; two followers must not share an id`,
      );
    }
    const now = Date.now();
    const record: FollowerRecord = {
      // The slot and what we last knew stay until the position is verified.
      ...blank(id, existing?.appliedSeq ?? 0n, existing?.slotLost ?? false),
      hasSlot: existing?.hasSlot ?? false,
      ackedSeq: existing?.ackedSeq ?? 0n,
      state: 'connecting',
      stateSinceMs: now,
      connected: true,
      address,
      readAddress,
      durable,
      lastAckTimeMs: existing?.lastAckTimeMs ?? 0,
      connectedAtMs: now,
    };
    // Nothing to persist yet: the slot, if any, is unchanged until the position is verified.
    this.records.set(id, record);
    this.pending.set(record, existing);
    this.emit(this.stateListeners, record);
    return record;
  }

  /** The master accepted the subscription: from now on the follower has a slot. */
  private accept(record: FollowerRecord): void {
    this.pending.delete(record);
    record.hasSlot = true;
    this.dirty = true;
  }

  /**
   * The follower's position is verified: it holds exactly the master's history up to
   * fromSeq - 1 and will be streamed the log from fromSeq.
   */
  startStream(record: FollowerRecord, fromSeq: bigint, masterLastSeq: bigint): void {
    this.accept(record);
    record.appliedSeq = fromSeq - 1n;
    record.ackedSeq = fromSeq - 1n;
    record.sentSeq = fromSeq - 1n;
    this.dirty = true;
    this.setState(record, fromSeq > masterLastSeq ? 'streaming' : 'catching_up');
    this.emit(this.advanceListeners, record);
  }

  /** The follower is being sent a snapshot taken at seq: its slot holds the log from seq + 1. */
  beginSnapshot(record: FollowerRecord, seq: bigint): void {
    this.accept(record);
    record.snapshotting = true;
    record.slotLost = false;
    record.appliedSeq = seq;
    record.sentSeq = seq;
    // Nothing the follower holds is verified as ours (its old data may be another history's);
    // it counts from the snapshot seq once it acknowledges the installed snapshot.
    record.ackedSeq = 0n;
    this.dirty = true;
    this.setState(record, 'snapshot');
  }

  /** The whole snapshot was sent; the log after it follows. It counts as applied once the follower acknowledges it. */
  endSnapshot(record: FollowerRecord): void {
    record.snapshotting = false;
    this.setState(record, 'catching_up');
  }

  /** The master can continue the follower's history: its slot holds again. */
  restoreSlot(record: FollowerRecord): void {
    if (record.slotLost) this.dirty = true;
    record.slotLost = false;
  }

  markSlotLost(record: FollowerRecord): void {
    record.slotLost = true;
    this.dirty = true;
  }

  setState(record: FollowerRecord, state: FollowerState): void {
    if (record.state === state) return;
    record.state = state;
    record.stateSinceMs = Date.now();
    record.connected = state !== 'disconnected';
    this.emit(this.stateListeners, record);
  }

  /**
   * The stream ended; error says why when it was refused or failed. A subscription that
   * was never accepted is undone: the follower's record is the one from before it
   * subscribed (none for a follower the master did not know).
   */
  detach(record: FollowerRecord, error?: unknown): void {
    const lastError = error === undefined ? undefined : isReplicatorError(error) ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error);
    if (this.pending.has(record)) {
      const previous = this.pending.get(record);
      this.pending.delete(record);
      if (this.records.get(record.id) === record) {
        if (previous) {
          // The retention pass may have marked the slot lost meanwhile (the pending record stood for it).
          previous.slotLost = record.slotLost;
          if (lastError !== undefined) previous.lastError = lastError;
          this.records.set(record.id, previous);
        } else {
          this.records.delete(record.id);
        }
      }
    }
    if (lastError !== undefined) record.lastError = lastError;
    record.snapshotting = false;
    this.setState(record, 'disconnected');
  }

  /**
   * Records a follower's report. Reports never move a position backwards, are ignored
   * while the position is unverified or a snapshot is being sent, and never count beyond
   * what this master sent on the stream: a report above sentSeq (a stale or foreign
   * process) is clamped, so a write is never counted as replicated by a follower it never
   * reached.
   */
  ack(id: number, appliedSeq: bigint, masterLastSeq: bigint): void {
    if (appliedSeq > masterLastSeq) {
      throw new ReplicatorError(ErrorCode.FOLLOWER_AHEAD, `follower ${id} reports seq ${appliedSeq} but the master's last seq is ${masterLastSeq}`);
    }
    const record = this.records.get(id);
    if (!record?.connected) return; // it reports again once subscribed to this master process
    record.lastAckTimeMs = Date.now();
    if (record.state === 'connecting' || record.snapshotting) return;
    const seq = appliedSeq < record.sentSeq ? appliedSeq : record.sentSeq;
    if (seq > record.appliedSeq) {
      record.appliedSeq = seq;
      this.dirty = true;
    }
    if (seq > record.ackedSeq) {
      record.ackedSeq = seq;
      this.emit(this.advanceListeners, record);
    }
  }

  get(id: number): FollowerRecord | undefined {
    return this.records.get(id);
  }

  list(): FollowerRecord[] {
    return [...this.records.values()].sort((a, b) => a.id - b.id);
  }

  /** Followers with a replication slot (what log retention holds the log for, and what is persisted). */
  slots(): FollowerRecord[] {
    return this.list().filter((r) => r.hasSlot);
  }

  /** Durable followers whose acknowledged seq is at least seq (connected or not: the data is on their disk). */
  durableAckCount(seq: bigint): number {
    let n = 0;
    for (const r of this.counted()) if (r.durable && r.ackedSeq >= seq) n++;
    return n;
  }

  /** Acknowledged seqs of the durable followers, highest first. */
  durableAckedSeqs(): bigint[] {
    const seqs: bigint[] = [];
    for (const r of this.counted()) if (r.durable) seqs.push(r.ackedSeq);
    return seqs.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  }

  /**
   * The records whose acknowledgements count: a subscription not yet accepted counts as
   * the record it replaced (its durable flag is only a claim until then), or not at all.
   */
  private *counted(): Iterable<FollowerRecord> {
    for (const r of this.records.values()) {
      const counted = this.pending.has(r) ? this.pending.get(r) : r;
      if (counted) yield counted;
    }
  }

  onAdvance(listener: Listener): void {
    this.advanceListeners.push(listener);
  }

  onStateChange(listener: Listener): void {
    this.stateListeners.push(listener);
  }

  /** Every slot, to persist, or none if nothing changed since the last call. */
  takeDirtySlots(): SlotRecord[] {
    if (!this.dirty) return [];
    this.dirty = false;
    return this.slots().map((r) => ({ followerId: r.id, appliedSeq: r.appliedSeq, lost: r.slotLost }));
  }

  private emit(listeners: Listener[], record: FollowerRecord): void {
    for (const l of listeners) l(record);
  }
}

/** A follower known only from its persisted slot (its acks do not count until it subscribes again). */
function blank(id: number, appliedSeq: bigint, slotLost: boolean): FollowerRecord {
  return {
    id,
    hasSlot: true,
    state: 'disconnected',
    stateSinceMs: 0,
    connected: false,
    address: '',
    readAddress: '',
    durable: false,
    appliedSeq,
    ackedSeq: appliedSeq,
    sentSeq: appliedSeq,
    bytesSent: 0,
    lastAckTimeMs: 0,
    connectedAtMs: 0,
    lastError: '',
    slotLost,
    snapshotting: false,
  };
}
