import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { metaKey, MetaName, slotKey, slotRange } from '../common/keys.js';
import type { BatchOp, Store } from '../common/store.js';

/** What the master knows about one follower; its slot survives restarts of the master. */
export interface FollowerRecord {
  id: number;
  connected: boolean;
  /** Peer address of the current (or last) stream. */
  address: string;
  /** Where the follower serves reads, as it told us. */
  readAddress: string;
  /** Highest seq the follower reported as durably applied (or the seq of the snapshot it is receiving). Invariant: appliedSeq <= master lastSeq. */
  appliedSeq: bigint;
  /** Highest seq sent on the current stream. */
  sentSeq: bigint;
  bytesSent: number;
  lastAckTimeMs: number;
  connectedAtMs: number;
  /** The follower fell behind the retention cap: the log no longer waits for it. */
  slotLost: boolean;
  snapshotting: boolean;
}

/**
 * Followers known to the master, with a replication slot each: the log keeps the entries
 * a registered follower still needs (up to the retention cap). At most one stream per
 * follower id: a second subscriber with the same id is refused while the first is
 * connected, so two processes can never both believe they are follower N.
 */
export class FollowerRegistry {
  private readonly records = new Map<number, FollowerRecord>();
  /** Slot positions changed since the last persist(). */
  private dirty = false;

  /** Loads the slots persisted by earlier runs (their followers start disconnected). */
  static async load(db: Store): Promise<FollowerRegistry> {
    const registry = new FollowerRegistry();
    const prefix = metaKey(MetaName.SLOT_PREFIX).length;
    for await (const [key, value] of db.iterator(slotRange())) {
      const id = Number(key.subarray(prefix).toString('ascii'));
      if (!Number.isSafeInteger(id) || value.length < 9) continue;
      registry.records.set(id, blank(id, value.readBigUInt64BE(0), value[8] === 1));
    }
    return registry;
  }

  attach(id: number, address: string, readAddress: string, fromSeq: bigint): FollowerRecord {
    const existing = this.records.get(id);
    if (existing?.connected) {
      throw new ReplicatorError(
        ErrorCode.DUPLICATE_FOLLOWER,
        `follower ${id} is already connected from ${existing.address}; two followers must not share an id`,
      );
    }
    const record: FollowerRecord = {
      ...blank(id, fromSeq - 1n, existing?.slotLost ?? false),
      connected: true,
      address,
      readAddress,
      lastAckTimeMs: existing?.lastAckTimeMs ?? 0,
      connectedAtMs: Date.now(),
    };
    this.records.set(id, record);
    this.dirty = true;
    return record;
  }

  detach(record: FollowerRecord): void {
    record.connected = false;
    record.snapshotting = false;
  }

  /** The follower is being sent a snapshot taken at seq: its slot holds the log from seq + 1. */
  beginSnapshot(record: FollowerRecord, seq: bigint): void {
    record.snapshotting = true;
    record.slotLost = false;
    record.appliedSeq = seq;
    record.sentSeq = seq;
    this.dirty = true;
  }

  endSnapshot(record: FollowerRecord): void {
    record.snapshotting = false;
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

  /** Records a follower's report; reports never move applied seq backwards. */
  ack(id: number, appliedSeq: bigint, masterLastSeq: bigint): void {
    if (appliedSeq > masterLastSeq) {
      throw new ReplicatorError(ErrorCode.FOLLOWER_AHEAD, `follower ${id} reports seq ${appliedSeq} but the master's last seq is ${masterLastSeq}`);
    }
    const record = this.records.get(id);
    if (!record?.connected) return; // it reports again once subscribed to this master process
    if (appliedSeq > record.appliedSeq && !record.snapshotting) {
      record.appliedSeq = appliedSeq;
      this.dirty = true;
    }
    record.lastAckTimeMs = Date.now();
  }

  list(): FollowerRecord[] {
    return [...this.records.values()].sort((a, b) => a.id - b.id);
  }

  /** Batch operations that persist every slot, or none if nothing changed. */
  persistOps(): BatchOp[] {
    if (!this.dirty) return [];
    this.dirty = false;
    return this.list().map((r) => {
      const value = Buffer.alloc(9);
      value.writeBigUInt64BE(r.appliedSeq, 0);
      value[8] = r.slotLost ? 1 : 0;
      return { type: 'put', key: slotKey(r.id), value };
    });
  }
}

function blank(id: number, appliedSeq: bigint, slotLost: boolean): FollowerRecord {
  return {
    id,
    connected: false,
    address: '',
    readAddress: '',
    appliedSeq,
    sentSeq: appliedSeq,
    bytesSent: 0,
    lastAckTimeMs: 0,
    connectedAtMs: 0,
    slotLost,
    snapshotting: false,
  };
}
