import type { MemberRecord } from '../coordination/records.js';
import { fetchStatus } from '../wire/rpc-client.js';
import type { ClientSecurity } from '../wire/security.js';
import type { CandidateView } from './failover-eligibility.js';

/** How long a candidate waits for another node's Status before counting it as not visible. */
export const LIVE_POSITION_TIMEOUT_MS = 1_000;

/**
 * The other members' positions as they answer now, for a failover candidate: a record in
 * etcd can be seconds old (its puts wait out etcd's request timeout while etcd elects a
 * raft leader, say) while the master went on acknowledging writes that a member applied.
 * Comparing with such a record could elect a node that lacks them. So each member listed
 * in etcd is asked for its Status at its address; one that does not answer in time is
 * left out, which for the sync set's quorum (failover-eligibility.ts) counts as not
 * visible: the check stays on the safe side.
 *
 * Invariant: every position returned was read from the node itself during this call.
 */
export async function livePositions(members: readonly MemberRecord[], security: ClientSecurity, timeoutMs = LIVE_POSITION_TIMEOUT_MS): Promise<CandidateView[]> {
  const answers = await Promise.all(
    members.map(async (m): Promise<CandidateView | undefined> => {
      try {
        const s = await fetchStatus(m.address, security, timeoutMs, m.role === 'follower' ? 'follower' : 'master');
        if (s.self) return { nodeId: m.nodeId, role: 'follower', appliedSeq: BigInt(s.self.appliedSeq) };
        return { nodeId: m.nodeId, role: s.role === 'deposed' ? 'deposed' : 'master', appliedSeq: BigInt(s.lastSeq) };
      } catch {
        return undefined;
      }
    }),
  );
  return answers.filter((a): a is CandidateView => a !== undefined);
}
