import { ReplicationState, type FollowerNodeState } from '../common/replication-state.js';
import type { ReplicaStore } from '../storage/interfaces.js';
import { stateToWire } from '../wire/follower-status-state.js';
import type { FollowerSelf } from '../wire/generated/levelreplicator/v1/FollowerSelf.js';
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
