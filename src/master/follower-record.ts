import type { StreamState } from '../common/replication-state.js';

/**
 * What the master knows about one follower; its slot survives restarts of the master.
 * Read-only outside the registry, which owns every change (follower-registry.ts): so a
 * record's fields always agree with each other, and no change skips the listeners or the
 * slot's persistence. Whether it is connected or being sent a snapshot is its state
 * (isConnectedState(state), state === 'snapshot'); whether it has a slot, slots() says.
 */
export interface FollowerRecord {
  readonly id: number;
  /** Its subscription's state, shown by Status and the lr_master_followers{state} metric (common/replication-state.ts). */
  readonly state: StreamState;
  /** Master clock (epoch ms) of the last state change. */
  readonly stateSinceMs: number;
  /** Peer address of the current (or last) stream. */
  readonly address: string;
  /** Where the follower serves reads, as it told us. */
  readonly readAddress: string;
  /** The follower fsyncs each applied batch before acknowledging it (--sync): its acks count for write acknowledgement. */
  readonly durable: boolean;
  /**
   * Slot position: the follower holds (or is being sent a snapshot of) everything up to
   * appliedSeq, so the log keeps appliedSeq + 1 on. Invariant: appliedSeq <= master lastSeq.
   */
  readonly appliedSeq: bigint;
  /**
   * Highest seq the follower itself reported as applied (durably so if `durable`), or
   * that the master verified when the stream started. Status, lag, min-followers and
   * write acknowledgement use this, never the slot position of a snapshot not yet
   * installed. Invariant: ackedSeq <= sentSeq once the stream has started.
   */
  readonly ackedSeq: bigint;
  /** Highest seq sent on the current stream (a snapshot at seq S counts as sending S). Never goes back on one stream. */
  readonly sentSeq: bigint;
  /** Entry bytes sent on the current stream. */
  readonly bytesSent: number;
  readonly lastAckTimeMs: number;
  readonly connectedAtMs: number;
  /** Why the last subscription was refused or failed; '' if it was not. */
  readonly lastError: string;
  /** The follower fell behind the retention cap: the log no longer waits for it. Persisted with the slot. */
  readonly slotLost: boolean;
  /**
   * It subscribed to this master process. A record known only from a persisted slot (the
   * master restarted since) has not: its durability, last ack time and addresses are
   * unknown, not "no" and "never".
   */
  readonly seen: boolean;
  /** The snapshot being sent (state snapshot), or the last one sent on this stream: seq, keys and key+value bytes so far, size estimate. */
  readonly snapshot: SnapshotProgress | undefined;
}

export interface SnapshotProgress {
  readonly seq: bigint;
  readonly keysSent: bigint;
  readonly bytesSent: number;
  readonly approxBytes: number;
}
