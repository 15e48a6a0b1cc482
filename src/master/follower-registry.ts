import { ErrorCode, ReplicatorError } from '../common/errors.js';

/** What the master knows about one follower. */
export interface FollowerRecord {
  id: number;
  connected: boolean;
  /** Peer address of the current (or last) stream. */
  address: string;
  /** Where the follower serves reads, as it told us. */
  readAddress: string;
  /** Highest seq the follower reported as durably applied. Invariant: appliedSeq <= master lastSeq. */
  appliedSeq: bigint;
  /** Highest seq sent on the current stream. */
  sentSeq: bigint;
  bytesSent: number;
  lastAckTimeMs: number;
  connectedAtMs: number;
}

/**
 * Followers seen since the master started. At most one stream per follower id: a second
 * subscriber with the same id is refused while the first is connected, so two processes
 * can never both believe they are follower N.
 */
export class FollowerRegistry {
  private readonly records = new Map<number, FollowerRecord>();

  attach(id: number, address: string, readAddress: string, fromSeq: bigint): FollowerRecord {
    const existing = this.records.get(id);
    if (existing?.connected) {
      throw new ReplicatorError(
        ErrorCode.DUPLICATE_FOLLOWER,
        `follower ${id} is already connected from ${existing.address}; two followers must not share an id`,
      );
    }
    const record: FollowerRecord = {
      id,
      connected: true,
      address,
      readAddress,
      appliedSeq: fromSeq - 1n,
      sentSeq: fromSeq - 1n,
      bytesSent: 0,
      lastAckTimeMs: existing?.lastAckTimeMs ?? 0,
      connectedAtMs: Date.now(),
    };
    this.records.set(id, record);
    return record;
  }

  detach(record: FollowerRecord): void {
    record.connected = false;
  }

  /** Records a follower's report; reports never move applied seq backwards. */
  ack(id: number, appliedSeq: bigint, masterLastSeq: bigint): void {
    if (appliedSeq > masterLastSeq) {
      throw new ReplicatorError(ErrorCode.FOLLOWER_AHEAD, `follower ${id} reports seq ${appliedSeq} but the master's last seq is ${masterLastSeq}`);
    }
    const record = this.records.get(id);
    if (!record) return; // not subscribed to this master process; it will attach on its next subscribe
    if (appliedSeq > record.appliedSeq) record.appliedSeq = appliedSeq;
    record.lastAckTimeMs = Date.now();
  }

  list(): FollowerRecord[] {
    return [...this.records.values()].sort((a, b) => a.id - b.id);
  }
}
