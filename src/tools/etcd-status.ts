import { EPOCH_KEY } from '../coordination/epoch-claim.js';
import { listMembers } from '../coordination/member-registry.js';
import type { MemberRecord } from '../coordination/records.js';
import { chooseCandidate, type Eligibility, type SyncSet } from '../node/failover-eligibility.js';
import { readHandover, readSyncSet, type Handover } from '../node/sync-set.js';
import type { EtcdDiscovery } from './etcd-discovery.js';
import { checksumText } from './status-report.js';

/**
 * replication-status --etcd: what etcd says of the cluster (issue 16 part 5), read in one
 * pass: the leader record and its lease's time to live, every member record with its
 * eligibility as a failover candidate (chooseCandidate, the function the nodes' agents
 * run), the sync set and a switchover's handover key. All of it is a snapshot of etcd,
 * not of the nodes: a member record lags its node by up to its publishing interval.
 */

export interface EtcdLeaderView {
  nodeId: number;
  address: string;
  /** null: just elected, the epoch not announced yet (it acknowledges nothing yet). */
  epoch: number | null;
  /** The leader lease, in hex as etcdctl prints lease ids. */
  leaseId: string;
  /** Seconds etcd says the lease has left (LeaseTimeToLive; it expires in under TTL + 1 s); null: unknown or expired. */
  leaseTtlS: number | null;
  /** The TTL the lease was granted with (--lease-ttl-s of the leader). */
  leaseGrantedTtlS: number | null;
}

export interface EtcdMemberView {
  nodeId: number;
  address: string;
  role: MemberRecord['role'];
  appliedSeq: string;
  appliedChecksum: number;
  epoch: number;
  /** Whether etcd names it the leader. */
  leader: boolean;
  /** Whether it is in the sync set (null: no sync set in etcd). */
  inSyncSet: boolean | null;
  /** Whether it would campaign if no node led now, and why; null for the leader itself. */
  candidate: Eligibility | null;
}

export interface EtcdView {
  cluster: string;
  endpoints: string;
  leader: EtcdLeaderView | null;
  /** The cluster's last epoch (the `epoch` key); null: no leader was ever elected. */
  clusterEpoch: number | null;
  syncSet: SyncSet | null;
  handover: Handover | null;
  members: EtcdMemberView[];
  /** Records or keys that do not parse: shown, never guessed at. */
  problems: string[];
}

/**
 * Each member's eligibility as failover candidate (pure). With a leader: whether it would
 * campaign if that leader were gone now (the leader's own record left out of the rivals).
 * A handover under way decides alone, as in the agents: only the node it names campaigns.
 */
export function eligibilities(
  members: readonly MemberRecord[],
  leaderId: number | undefined,
  sync: SyncSet | undefined,
  handover: Handover | undefined,
  bootstrapped: boolean,
): Map<number, Eligibility | null> {
  const out = new Map<number, Eligibility | null>();
  for (const m of members) {
    if (m.nodeId === leaderId) {
      out.set(m.nodeId, null);
    } else if (handover) {
      out.set(m.nodeId, handover.to === m.nodeId ? { eligible: true, why: 'a switchover names this node' } : { eligible: false, why: `a switchover hands the lead to node ${handover.to}` });
    } else {
      const others = members.filter((o) => o.nodeId !== m.nodeId && o.nodeId !== leaderId);
      out.set(m.nodeId, chooseCandidate(m, others, sync, bootstrapped));
    }
  }
  return out;
}

/** A read that fails is a problem to show, not the end of the view. */
async function orProblem<T>(problems: string[], what: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    problems.push(`${what}: ${(err as Error).message}`);
    return undefined;
  }
}

/** Reads the view from etcd; etcd unreachable rejects (MASTER_UNAVAILABLE), a malformed key becomes a problem. */
export async function gatherEtcdView(d: EtcdDiscovery): Promise<EtcdView> {
  const problems: string[] = [];
  const key = await d.leaderKey().catch((err: Error) => {
    if (/^malformed/.test(err.message)) return void problems.push(`the leader record: ${err.message}`);
    throw err;
  });
  const conn = d.conn;
  const { members, malformed } = await d.read('the member records', () => listMembers(conn));
  for (const m of malformed) problems.push(`${m.key}: ${m.error}`);
  const [lease, sync, handover, epochText] = await d.read('the failover keys', () =>
    Promise.all([
      key ? orProblem(problems, 'the leader lease', () => conn.ns.leaseClient.leaseTimeToLive({ ID: key.leaseId })) : undefined,
      orProblem(problems, 'the sync set', () => readSyncSet(conn)),
      orProblem(problems, 'the handover key', () => readHandover(conn)),
      conn.ns.get(EPOCH_KEY).string(),
    ]),
  );
  const clusterEpoch = epochText === null ? null : Number(epochText);
  const leaderId = key?.record.nodeId;
  const verdicts = eligibilities(members, leaderId, sync, handover, epochText !== null);
  const ttl = lease ? Number(lease.TTL) : NaN;
  const granted = lease ? Number(lease.grantedTTL) : NaN;
  return {
    cluster: d.cluster,
    endpoints: d.endpoints,
    leader: key
      ? {
          nodeId: key.record.nodeId,
          address: key.record.address,
          epoch: key.record.epoch ?? null,
          leaseId: BigInt(key.leaseId).toString(16),
          leaseTtlS: ttl >= 0 ? ttl : null,
          leaseGrantedTtlS: granted > 0 ? granted : null,
        }
      : null,
    clusterEpoch: clusterEpoch !== null && Number.isSafeInteger(clusterEpoch) ? clusterEpoch : null,
    syncSet: sync ?? null,
    handover: handover ?? null,
    members: members.map((m) => ({
      nodeId: m.nodeId,
      address: m.address,
      role: m.role,
      appliedSeq: m.appliedSeq.toString(),
      appliedChecksum: m.appliedChecksum,
      epoch: m.epoch,
      leader: m.nodeId === leaderId,
      inSyncSet: sync ? sync.members.includes(m.nodeId) : null,
      candidate: verdicts.get(m.nodeId) ?? null,
    })),
    problems,
  };
}

function leaderText(v: EtcdView): string {
  const l = v.leader;
  if (!l) return 'none: no node holds the leader key (a failover may be under way; nodes campaign as CANDIDATE says)';
  const epoch = l.epoch === null ? 'epoch not announced yet' : `epoch ${l.epoch}`;
  const lease = l.leaseTtlS === null ? 'expired or unknown' : `${l.leaseTtlS} s left${l.leaseGrantedTtlS ? ` of ${l.leaseGrantedTtlS} s` : ''}`;
  return `node ${l.nodeId} at ${l.address}  ${epoch}  lease ${l.leaseId}: ${lease}`;
}

/** Columns padded to their widest cell; the last column is left ragged. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

export function etcdViewText(v: EtcdView): string {
  const lines = [
    `etcd ${v.endpoints}  cluster ${v.cluster}${v.clusterEpoch === null ? '  (no leader was ever elected)' : `  last epoch ${v.clusterEpoch}`}`,
    `leader    ${leaderText(v)}`,
    `sync set  ${v.syncSet ? `[${v.syncSet.members.join(', ')}] of epoch ${v.syncSet.epoch}, --ack-followers ${v.syncSet.ackFollowers}` : 'none (any node may take over: asynchronous acknowledgements, or none counted yet)'}`,
    `handover  ${v.handover ? `to node ${v.handover.to}, from the leader of epoch ${v.handover.fromEpoch} (a switchover is under way)` : 'none'}`,
  ];
  for (const p of v.problems) lines.push(`WARNING: ${p}`);
  let out = lines.join('\n') + '\n';
  if (v.members.length === 0) return out + 'no member records in etcd (no node runs with this --etcd and --cluster)\n';
  const rows = [['NODE', 'ROLE', 'ADDRESS', 'APPLIED', 'EPOCH', 'CHECKSUM', 'SYNC_SET', 'CANDIDATE']];
  for (const m of v.members) {
    const candidate = m.candidate === null ? 'leader' : `${m.candidate.eligible ? 'yes' : 'no'}: ${m.candidate.why}`;
    rows.push([String(m.nodeId), m.role, m.address, m.appliedSeq, String(m.epoch), checksumText(m.appliedChecksum), m.inSyncSet === null ? '-' : m.inSyncSet ? 'yes' : 'no', candidate]);
  }
  out += table(rows);
  return out;
}
