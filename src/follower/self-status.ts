import { ReplicationState, type FollowerNodeState } from '../common/replication-state.js';
import { VERSION } from '../common/version.js';
import type { ReplicaStore } from '../storage/interfaces.js';
import { historyToWire } from '../wire/epoch-wire.js';
import { stateToWire } from '../wire/follower-status-state.js';
import type { FollowerSelf } from '../wire/generated/levelreplicator/v1/FollowerSelf.js';
import type { StatusResponse } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import { seqToWire } from '../wire/seq.js';

/** What a follower knows about its own replication (the subscriber provides it). */
export interface SelfSource {
  readonly state: FollowerNodeState;
  /** Follower clock (epoch ms) of the last state change. */
  readonly stateSinceMs: number;
  readonly masterLastSeq: bigint;
  /** Why the last subscription failed; '' once it streams again. */
  readonly lastError: string;
  lagMs(): number;
  /** Node ids from the upstream up to the master, as the last stream started. */
  readonly upstreamChain?: readonly number[];
}

/**
 * A follower's answer to Status: its own view, in the vocabulary the master uses for it
 * (a stopping node's `stopped` goes on the wire as DISCONNECTED, the enum having no such
 * value: its stream is closed either way).
 */
export function followerSelf(
  followerId: number,
  masterAddress: string,
  durable: boolean,
  store: ReplicaStore,
  source: SelfSource,
  /** The node it streams from (default: masterAddress). */
  upstreamAddress: string = masterAddress,
): FollowerSelf {
  const applied = store.appliedSeq;
  const lag = source.masterLastSeq > applied ? source.masterLastSeq - applied : 0n;
  const state = source.state === ReplicationState.STOPPED ? ReplicationState.DISCONNECTED : source.state;
  return {
    followerId,
    masterAddress,
    state: stateToWire(state),
    appliedSeq: seqToWire(applied),
    masterLastSeq: seqToWire(source.masterLastSeq),
    lagEntries: seqToWire(lag),
    lagMs: String(source.lagMs()),
    sinceMs: String(source.stateSinceMs),
    historyId: store.historyId,
    durable,
    timeMs: String(Date.now()),
    lastError: source.lastError,
    upstreamAddress,
    epoch: store.log.epoch,
    appliedChecksum: store.appliedChecksum,
    chain: [...(source.upstreamChain ?? [])],
  };
}

/**
 * A follower's whole Status answer but its downstream followers (read-only-master.ts adds
 * them): its own view in `self`, and the node fields a master's answer carries too, with
 * the same meaning: its node id, its epoch and epoch history (its log's), its history id,
 * the master as it knows it, the newest epoch it has heard of, and its version. Without
 * them replication-status showed a follower's seen epoch as 0 and never said it knew of a
 * newer epoch than its history's.
 */
export function followerStatus(self: FollowerSelf, store: ReplicaStore, seenEpoch: number): StatusResponse {
  return {
    role: 'follower',
    self,
    masterTimeMs: '0',
    nodeId: self.followerId,
    epoch: store.log.epoch,
    epochs: historyToWire(store.log.epochs),
    historyId: store.historyId,
    masterAddress: self.masterAddress,
    seenEpoch: Math.max(seenEpoch, store.log.epoch),
    version: VERSION,
  };
}
