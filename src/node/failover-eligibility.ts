import type { MemberRecord } from '../coordination/records.js';

/** The sync set a master publishes (src/node/sync-set.ts): who may hold acknowledged writes. */
export interface SyncSet {
  /** The epoch of the master that published it. */
  epoch: number;
  /** Followers whose acknowledgements that master counted (each was added here first). */
  members: number[];
  /** That master's --ack-followers: a write it acknowledged is on at least this many members. */
  ackFollowers: number;
}

export interface CandidateView {
  nodeId: number;
  role: MemberRecord['role'];
  appliedSeq: bigint;
}

export interface Eligibility {
  eligible: boolean;
  /** Why, in words, for the log and replication-status. */
  why: string;
}

/**
 * Whether a node may campaign for the leader key now that there is no leader (pure; see
 * README "Automatic failover" for the contract).
 *
 * - With a sync set whose master acknowledged with N >= 1 followers (synchronous_mode_strict
 *   in Patroni's words): only its members may campaign, and only while at least
 *   |S| - N + 1 of them are visible (their records live in etcd), this one included. Every
 *   write acknowledged with N followers is on N members of S, so among any |S| - N + 1 of
 *   them at least one has it, and the most advanced visible member has every one.
 * - Without one (async acknowledgements, or no follower counted yet): any node may.
 * - In both cases a node yields to a visible eligible node that is ahead of it: a higher
 *   applied seq, or the same seq and the master's role, or the same and a lower id. So the
 *   node elected has applied the most of everything reachable.
 *
 * - Before any leader was ever elected in the cluster (no epoch in etcd), a follower
 *   campaigns only while a node in the master role answers (and it is ahead of it): the
 *   first leader is chosen with the master-server, which holds the data, in view.
 *
 * A member's record may lag its node by the publisher's interval (200 ms); once the master
 * is gone the positions stop moving, so the comparison is of settled positions.
 */
export function chooseCandidate(me: CandidateView, others: readonly CandidateView[], sync: SyncSet | undefined, bootstrapped = true): Eligibility {
  if (!bootstrapped && me.role !== 'master' && !others.some((o) => o.role === 'master' || o.role === 'deposed')) {
    // Else a follower started before its master, with nothing applied, could win the first
    // election and depose the master that holds the data. Once a master-server answers,
    // the positions decide as always (a restarted master-server may be behind its
    // followers, after an etcd that lost its data: it then yields to the one ahead).
    return { eligible: false, why: 'no leader was ever elected in this cluster and no master-server answers: the first leader is chosen only with the master-server in view' };
  }
  const strict = sync !== undefined && sync.ackFollowers >= 1 && sync.members.length > 0;
  const inSet = (id: number) => !strict || sync!.members.includes(id);
  if (!inSet(me.nodeId)) {
    return { eligible: false, why: `not in the sync set [${sync!.members.join(', ')}] of epoch ${sync!.epoch}: it may lack writes acknowledged with --ack-followers ${sync!.ackFollowers}` };
  }
  const rivals = others.filter((o) => inSet(o.nodeId));
  if (strict) {
    const visible = 1 + rivals.length;
    const needed = sync!.members.length - sync!.ackFollowers + 1;
    if (visible < needed) {
      return {
        eligible: false,
        why: `only ${visible} of the sync set's ${sync!.members.length} members [${sync!.members.join(', ')}] are visible; with --ack-followers ${sync!.ackFollowers} at least ${needed} are needed to be sure one has every acknowledged write`,
      };
    }
  }
  const ahead = rivals.find((o) => isAhead(o, me));
  if (ahead) {
    const how = ahead.appliedSeq > me.appliedSeq ? `applied seq ${ahead.appliedSeq}, this node ${me.appliedSeq}` : `same applied seq ${me.appliedSeq}, ${ahead.role === 'master' && me.role !== 'master' ? 'and the master role' : 'and a lower id'}`;
    return { eligible: false, why: `node ${ahead.nodeId} is the better candidate (${how})` };
  }
  const scope = strict ? `the most advanced of the sync set's visible members` : 'the most advanced node visible';
  return { eligible: true, why: `${scope} (applied seq ${me.appliedSeq}, ${rivals.length} other candidate(s) seen)` };
}

/** Whether a is a better candidate than b. */
export function isAhead(a: CandidateView, b: CandidateView): boolean {
  if (a.appliedSeq !== b.appliedSeq) return a.appliedSeq > b.appliedSeq;
  const am = a.role === 'master' ? 1 : 0;
  const bm = b.role === 'master' ? 1 : 0;
  if (am !== bm) return am > bm;
  return a.nodeId < b.nodeId;
}
