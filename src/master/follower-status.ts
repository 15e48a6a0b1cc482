import { isConnectedState, ReplicationState } from '../common/replication-state.js';
import type { ReplicationLog } from '../storage/interfaces.js';
import { stateToWire } from '../wire/follower-status-state.js';
import type { FollowerStatus } from '../wire/generated/levelreplicator/v1/FollowerStatus.js';
import { seqToWire } from '../wire/seq.js';
import type { FollowerRecord } from './follower-record.js';
import { lagEntries, lagMs } from './replication-lag.js';

/**
 * One follower's row of a Status answer, as the node serving it sees it (the master, or a
 * follower serving chained followers from its own log): everything but the slot's hold,
 * which only the master's log has (slot-hold.ts).
 */
export async function followerStatus(f: FollowerRecord, wal: ReplicationLog, now: number): Promise<Omit<FollowerStatus, 'slotEntries' | 'slotBytes'>> {
  const connected = isConnectedState(f.state);
  return {
    followerId: f.id,
    connected,
    state: stateToWire(f.state),
    appliedSeq: seqToWire(f.ackedSeq),
    sentSeq: seqToWire(f.sentSeq),
    lagEntries: seqToWire(lagEntries(wal, f.ackedSeq)),
    lagMs: String(await lagMs(wal, f.ackedSeq, now)),
    address: f.address,
    readAddress: f.readAddress,
    lastAckTimeMs: String(f.lastAckTimeMs),
    slotLost: f.slotLost,
    snapshotting: f.state === ReplicationState.SNAPSHOT,
    bytesSent: String(f.bytesSent),
    durable: f.durable,
    lastError: f.lastError,
    seen: f.seen,
    sinceMs: String(connected ? f.connectedAtMs : f.stateSinceMs),
    snapshotProgress:
      f.state === ReplicationState.SNAPSHOT && f.snapshot
        ? { seq: seqToWire(f.snapshot.seq), keysSent: f.snapshot.keysSent.toString(), bytesSent: String(f.snapshot.bytesSent), approxBytes: String(f.snapshot.approxBytes) }
        : null,
  };
}
