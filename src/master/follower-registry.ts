import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { isConnectedState, ReplicationState, type StreamState } from '../common/replication-state.js';
import type { FollowerRecord } from './follower-record.js';
import type { SlotRecord } from '../storage/interfaces.js';

const S = ReplicationState;

/** The registry's own, writable copy of a record (follower-record.ts): only this file changes one. */
type MutableRecord = { -readonly [K in keyof FollowerRecord]: FollowerRecord[K] };

type Listener = (record: FollowerRecord) => void;

/**
 * Followers known to the master, with a replication slot each: the log keeps the entries
 * a registered follower still needs (up to the retention cap). At most one stream per
 * follower id: a second subscriber with the same id is refused while the first is
 * connected, so two processes can never both believe they are follower N.
 *
 * Lifecycle of one subscription, the only state changes there are (any other is a bug and
 * is refused with INTERNAL, changing nothing):
 *
 *   attach()                          -> connecting
 *   connecting  --startStream()-->       catching_up, or streaming if nothing is left to send
 *   connecting  --beginSnapshot()-->     snapshot
 *   snapshot    --endSnapshot()-->       catching_up
 *   catching_up --recordCaughtUp()-->    streaming (and it stays there while connected)
 *   any but disconnected --detach()-->   disconnected (final for that record: a new
 *                                        subscription gets a new record from attach())
 *
 * recordSent() belongs to catching_up and streaming (only a stream sending the log sends
 * entries); ack() counts only then too. Listeners hear every advance of an acknowledged
 * seq (write acknowledgement waits on them) and every state change.
 *
 * A follower gets a slot only when the master accepts its subscription (startStream() or
 * beginSnapshot()). A subscription detached before that (refused: FOLLOWER_AHEAD, an
 * invalid position, no snapshot could be taken, ...) changes nothing the master knew: a new
 * id leaves no record, a known follower's record and slot are what they were before
 * (with the refusal as its lastError).
 */
export class FollowerRegistry {
  private readonly records = new Map<number, MutableRecord>();
  /**
   * Subscriptions attached but not yet accepted, each with the record it replaced (the
   * follower's slot from before), or undefined for a follower the master did not know:
   * such a record is the only one without a slot.
   */
  private readonly pending = new Map<FollowerRecord, MutableRecord | undefined>();
  /** Slot positions changed since the last persist(). */
  private dirty = false;
  private readonly advanceListeners: Listener[] = [];
  private readonly stateListeners: Listener[] = [];
  private readonly dropListeners: Listener[] = [];
  /**
   * With --etcd and --ack-followers >= 1: only followers in the sync set published in etcd
   * count for acknowledgements (src/node/sync-set.ts), so a failover candidate knows which
   * nodes may hold an acknowledged write. undefined: every durable follower counts.
   */
  private ackFilter: ((followerId: number) => boolean) | undefined;

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
    if (existing && isConnectedState(existing.state)) {
      throw new ReplicatorError(
        ErrorCode.DUPLICATE_FOLLOWER,
        `follower ${id} is already connected from ${existing.address}; two followers must not share an id`,
      );
    }
    const now = Date.now();
    const record: MutableRecord = {
      // The slot and what we last knew stay until the position is verified.
      ...blank(id, existing?.appliedSeq ?? 0n, existing?.slotLost ?? false),
      ackedSeq: existing?.ackedSeq ?? 0n,
      state: S.CONNECTING,
      stateSinceMs: now,
      address,
      readAddress,
      durable,
      lastAckTimeMs: existing?.lastAckTimeMs ?? 0,
      connectedAtMs: now,
      seen: true,
    };
    // Nothing to persist yet: the slot, if any, is unchanged until the position is verified.
    this.records.set(id, record);
    this.pending.set(record, existing);
    this.emit(this.stateListeners, record);
    return record;
  }

  /**
   * The follower's position is verified: it holds exactly the master's history up to
   * fromSeq - 1 and will be streamed the log from fromSeq. Its slot holds from there, even
   * if it was lost (the master can continue its history after all).
   */
  startStream(record: FollowerRecord, fromSeq: bigint, masterLastSeq: bigint): void {
    const r = this.expect(record, [S.CONNECTING], 'start streaming the log');
    this.accept(r);
    r.slotLost = false;
    r.appliedSeq = fromSeq - 1n;
    r.ackedSeq = fromSeq - 1n;
    r.sentSeq = fromSeq - 1n;
    this.enter(r, fromSeq > masterLastSeq ? S.STREAMING : S.CATCHING_UP);
    this.emit(this.advanceListeners, r);
  }

  /** The follower is being sent a snapshot taken at seq (about approxBytes): its slot holds the log from seq + 1. */
  beginSnapshot(record: FollowerRecord, seq: bigint, approxBytes = 0): void {
    const r = this.expect(record, [S.CONNECTING], 'begin a snapshot');
    this.accept(r);
    r.slotLost = false;
    r.appliedSeq = seq;
    r.sentSeq = seq;
    r.snapshot = { seq, keysSent: 0n, bytesSent: 0, approxBytes };
    // Nothing the follower holds is verified as ours (its old data may be another history's);
    // it counts from the snapshot seq once it acknowledges the installed snapshot.
    r.ackedSeq = 0n;
    this.enter(r, S.SNAPSHOT);
  }

  /** More of the snapshot was sent: keys pairs of bytes key and value bytes (for status). */
  recordSnapshotSent(record: FollowerRecord, keys: number, bytes: number): void {
    const r = this.expect(record, [S.SNAPSHOT], 'send snapshot pairs');
    const p = r.snapshot!;
    r.snapshot = { ...p, keysSent: p.keysSent + BigInt(keys), bytesSent: p.bytesSent + bytes };
  }

  /** The whole snapshot was sent; the log after it follows. It counts as applied once the follower acknowledges it. */
  endSnapshot(record: FollowerRecord): void {
    this.enter(this.expect(record, [S.SNAPSHOT], 'end a snapshot'), S.CATCHING_UP);
  }

  /** The stream sent the log up to seq (bytes of entries): the follower may acknowledge up to there. */
  recordSent(record: FollowerRecord, seq: bigint, bytes: number): void {
    const r = this.expect(record, [S.CATCHING_UP, S.STREAMING], 'send entries');
    if (seq < r.sentSeq) throw refused(r, `send up to seq ${seq} after seq ${r.sentSeq}`);
    r.sentSeq = seq;
    r.bytesSent += bytes;
  }

  /** The stream has sent everything committed so far (once is enough: it stays streaming while connected). */
  recordCaughtUp(record: FollowerRecord): void {
    if (record.state === S.STREAMING) return;
    this.enter(this.expect(record, [S.CATCHING_UP], 'catch up'), S.STREAMING);
  }

  /** The retention cap was passed: the log no longer waits for this follower. */
  markSlotLost(record: FollowerRecord): void {
    const r = this.own(record);
    if (!this.hasSlot(r)) throw refused(r, 'lose a slot it does not have');
    r.slotLost = true;
    this.dirty = true;
  }

  /**
   * Forgets a follower and its slot (replication-admin drop-slot): the log no longer waits
   * for it, Status no longer lists it, its acknowledgements no longer count, and the next
   * takeDirtySlots() no longer holds it (the caller deletes the persisted record). A
   * connected follower's slot is dropped only with force; its stream hears it through
   * onDrop() and ends. A subscription still being checked has no slot of its own: what is
   * dropped is the slot from before it, which it would have restored if refused.
   */
  drop(id: number, force: boolean): { record: FollowerRecord; wasConnected: boolean } {
    const record = this.records.get(id);
    const slotOwner = record && (this.pending.has(record) ? this.pending.get(record) : record);
    if (!record || !slotOwner) throw new ReplicatorError(ErrorCode.SLOT_NOT_FOUND, `follower ${id} has no replication slot on this master`);
    const wasConnected = isConnectedState(record.state);
    if (wasConnected && !force) {
      throw new ReplicatorError(
        ErrorCode.FOLLOWER_CONNECTED,
        `follower ${id} is connected (${record.state}, from ${record.address}); stop it first, or use --force to drop its slot and end its stream (a running follower subscribes again and gets a new slot)`,
      );
    }
    this.records.delete(id);
    this.pending.delete(record);
    this.dirty = true;
    this.emit(this.dropListeners, record);
    return { record: slotOwner, wasConnected };
  }

  /** Hears every record drop() removes (its stream, if any, must end). */
  onDrop(listener: Listener): () => void {
    this.dropListeners.push(listener);
    return () => {
      const i = this.dropListeners.indexOf(listener);
      if (i >= 0) this.dropListeners.splice(i, 1);
    };
  }

  /** The follower's slot holds the log (it has one and it is not lost): retention keeps what it has not applied. */
  holdsLog(record: FollowerRecord): boolean {
    return this.hasSlot(record) && !record.slotLost;
  }

  /**
   * The stream ended; error says why when it was refused or failed. A subscription that
   * was never accepted is undone: the follower's record is the one from before it
   * subscribed (none for a follower the master did not know).
   */
  detach(record: FollowerRecord, error?: unknown): void {
    const r = this.expect(record, [S.CONNECTING, S.SNAPSHOT, S.CATCHING_UP, S.STREAMING], 'disconnect');
    const lastError = error === undefined ? undefined : isReplicatorError(error) ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error);
    if (this.pending.has(r)) {
      const previous = this.pending.get(r);
      this.pending.delete(r);
      if (this.records.get(r.id) === r) {
        if (previous) {
          // The retention pass may have marked the slot lost meanwhile (the pending record stood for it).
          previous.slotLost = r.slotLost;
          if (lastError !== undefined) previous.lastError = lastError;
          this.records.set(r.id, previous);
        } else {
          this.records.delete(r.id);
        }
      }
    }
    if (lastError !== undefined) r.lastError = lastError;
    this.enter(r, S.DISCONNECTED);
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
    if (!record || !isConnectedState(record.state)) return; // it reports again once subscribed to this master process
    record.lastAckTimeMs = Date.now();
    if (record.state === S.CONNECTING || record.state === S.SNAPSHOT) return;
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
    return this.list().filter((r) => this.hasSlot(r));
  }

  /** Only followers this admits count for acknowledgements from now on (undefined: all). */
  setAckFilter(filter: ((followerId: number) => boolean) | undefined): void {
    this.ackFilter = filter;
    for (const r of this.records.values()) this.advanceListeners.forEach((l) => l(r)); // waiters look again
  }

  /** The filter now admits this follower: writes waiting for acknowledgements look again. */
  admitted(followerId: number): void {
    const r = this.records.get(followerId);
    if (r) this.advanceListeners.forEach((l) => l(r));
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
      if (counted && (!this.ackFilter || this.ackFilter(counted.id))) yield counted;
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

  /**
   * A follower has a slot once the master accepted a subscription of it, in this run or an
   * earlier one (it was streamed the log or sent a snapshot): the slot is persisted and held
   * by log retention. Only a first subscription still being checked has none (a refused
   * one leaves no record behind).
   */
  private hasSlot(record: FollowerRecord): boolean {
    return !this.pending.has(record) || this.pending.get(record) !== undefined;
  }

  /** The master accepted the subscription: from now on the follower has a slot (hasSlot). */
  private accept(record: MutableRecord): void {
    this.pending.delete(record);
    this.dirty = true;
  }

  /** The registry's writable record behind a read-only one it handed out. */
  private own(record: FollowerRecord): MutableRecord {
    // Every record is made here (by attach() or from a persisted slot): the view handed out is this very object.
    return record as MutableRecord;
  }

  /** The record, if it is in one of the states `event` may happen in; refused (INTERNAL) otherwise, before anything changes. */
  private expect(record: FollowerRecord, from: readonly StreamState[], event: string): MutableRecord {
    if (!from.includes(record.state)) throw refused(record, event);
    return this.own(record);
  }

  private enter(record: MutableRecord, state: StreamState): void {
    record.state = state;
    record.stateSinceMs = Date.now();
    this.emit(this.stateListeners, record);
  }

  private emit(listeners: Listener[], record: FollowerRecord): void {
    for (const l of listeners) l(record);
  }
}

/** A transition the lifecycle does not have: a bug in the caller, never a follower's doing. */
function refused(record: FollowerRecord, event: string): ReplicatorError {
  return new ReplicatorError(ErrorCode.INTERNAL, `follower ${record.id} cannot ${event} while ${record.state}`);
}

/** A follower known only from its persisted slot (its acks do not count until it subscribes again). */
function blank(id: number, appliedSeq: bigint, slotLost: boolean): MutableRecord {
  return {
    id,
    state: S.DISCONNECTED,
    stateSinceMs: 0,
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
    seen: false,
    snapshot: undefined,
  };
}
