import type { Lease } from 'etcd3';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { LeaderRecord } from '../coordination/records.js';
import { HANDOVER_KEY, readHandover } from '../node/sync-set.js';
import { fetchStatus } from '../wire/rpc-client.js';
import { clientSecurityFromArgv, type ClientSecurity } from '../wire/security.js';
import { discoveryFromArgv, type ElectedLeader, type EtcdDiscovery } from './etcd-discovery.js';
import { STATUS_PROBE_TIMEOUT_MS } from './master-finder.js';
import { pauseWrites, waitForMaster } from './role-commands.js';

/**
 * replication-admin switchover --to <id> --etcd ... (issue 16 part 5): hands the lead to
 * node <id> through etcd, where the nodes' failover agents do the rest
 * (src/node/failover-agent.ts):
 *
 *   1. the leader etcd names pauses writes (Admin.PauseWrites: WRITES_PAUSED, nothing written);
 *   2. wait until <id> has durably applied the leader's last seq (the leader's view of its
 *      acknowledgements, which a --sync follower sends after its fsync);
 *   3. put the handover key {to, fromEpoch} under a lease of its own (HANDOVER_TTL_S, not
 *      renewed), created only if no other switchover's key is there: the leader of fromEpoch
 *      resigns (acknowledging nothing from then on), and while the key lives only <id>
 *      campaigns; once elected it deletes the key;
 *   4. wait until etcd names <id> the leader at a newer epoch and it answers as master.
 *
 * Invariant: every write the old leader acknowledged is at or below the seq step 2 waited
 * for (writes stay paused until it resigns: the pause outlasts every wait here), so the new
 * leader has them all. On any failure writes resume on the old leader and the handover
 * key is deleted (its lease revoked); a key this process could not delete expires on its own.
 */

/** The handover key's lease: how long the key of a switchover that died midway can hold elections back. */
export const HANDOVER_TTL_S = 30;
/** Longest wait for etcd to name the target once the key is put (the leader resigns within its agent's tick). */
const ELECTION_WAIT_MS = 20_000;
/** How long the elected target may take to open its store as the master's. */
const BECOME_MASTER_MS = 30_000;
const POLL_MS = 20;

function refused(message: string): ReplicatorError {
  return new ReplicatorError(ErrorCode.PROMOTION_REFUSED, message);
}

/** replication-admin switchover --etcd: see above. Prints what happened and how long writes were paused. */
export async function switchoverViaEtcd(argv: Record<string, unknown>): Promise<void> {
  const timeoutMs = argv['timeout-ms'] as number;
  const d = discoveryFromArgv(argv, timeoutMs)!;
  try {
    await switchover(d, argv.to as number, timeoutMs, clientSecurityFromArgv(argv), argv.json as boolean);
  } finally {
    d.close();
  }
}

async function switchover(d: EtcdDiscovery, to: number, timeoutMs: number, security: ClientSecurity, json: boolean): Promise<void> {
  const leader = await d.electedLeader();
  if (leader.nodeId === to) throw refused(`node ${to} at ${leader.address} is the leader already (epoch ${leader.epoch})`);
  const pending = await d.read('the handover key', () => readHandover(d.conn));
  if (pending) throw refused(`a switchover to node ${pending.to} (from the leader of epoch ${pending.fromEpoch}) is under way; its key expires within ${HANDOVER_TTL_S} s if it failed`);
  const target = (await d.members()).find((m) => m.nodeId === to);
  if (!target) throw new ReplicatorError(ErrorCode.FOLLOWER_UNAVAILABLE, `node ${to} has no member record in etcd ${d.where}: it is not running, or not with this --etcd and --cluster`);
  const own = await fetchStatus(target.address, security, Math.min(timeoutMs, STATUS_PROBE_TIMEOUT_MS), 'follower');
  if (own.role !== 'follower' || !own.self) throw refused(`node ${to} at ${target.address} is not a follower (it answers as ${own.role || 'master'})`);
  // Its applied seq must survive a crash: the handover key lets it campaign for HANDOVER_TTL_S whatever it holds.
  if (!own.self.durable) throw refused(`follower ${to} runs with --no-sync: what it applied may not survive a crash; a switchover through etcd needs a --sync follower`);

  const started = process.hrtime.bigint();
  // Writes must stay paused until the leader resigns: the pause outlasts every wait below (a failure resumes them at once).
  const pauseFor = Math.min(0xffff_ffff, timeoutMs + ELECTION_WAIT_MS + BECOME_MASTER_MS);
  const paused = await pauseWrites(leader.address, { timeoutMs: pauseFor }, security, timeoutMs);
  const lastSeq = BigInt(paused.lastSeq);
  let lease: Lease | undefined;
  let elected: ElectedLeader;
  try {
    if (paused.epoch !== leader.epoch) throw refused(`the master at ${leader.address} is at epoch ${paused.epoch}, but etcd names it the leader of epoch ${leader.epoch}; the lead changed meanwhile`);
    await waitApplied(leader.address, target.address, to, lastSeq, security, timeoutMs);
    lease = d.conn.ns.lease(HANDOVER_TTL_S, { autoKeepAlive: false });
    const leaseId = await d.read('a lease for the handover key', () => lease!.grant());
    const value = JSON.stringify({ to, fromEpoch: leader.epoch });
    const put = await d.read('the handover key', () =>
      d.conn.ns.if(HANDOVER_KEY, 'Create', '==', 0).then(d.conn.ns.put(HANDOVER_KEY).value(value).lease(leaseId)).commit(),
    );
    if (!put.succeeded) throw refused('another switchover put its handover key meanwhile');
    elected = await waitElected(d, to, leader.epoch);
    await waitForMaster(target.address, elected.epoch, security, BECOME_MASTER_MS);
  } catch (err) {
    // Undo what can be undone: writes resume on the old leader (a no-op once it resigned), the key goes.
    await pauseWrites(leader.address, { resume: true }, security, timeoutMs).catch(() => undefined);
    await lease?.revoke().catch(() => undefined);
    const e = isReplicatorError(err) ? err : new ReplicatorError(ErrorCode.INTERNAL, String((err as Error)?.message ?? err), { cause: err });
    throw new ReplicatorError(e.code, `switchover to node ${to} failed: ${e.message}; writes resume on the leader at ${leader.address} if it still leads, and the handover key is deleted`, { cause: err });
  }
  // The new leader deleted the key when elected; revoking only ends the lease.
  await lease.revoke().catch(() => undefined);
  const pauseMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (json) {
    process.stdout.write(
      JSON.stringify({ master: elected.address, followerId: to, epoch: elected.epoch, handedOverSeq: lastSeq.toString(), pauseMs: Math.round(pauseMs), previous: { nodeId: leader.nodeId, address: leader.address, epoch: leader.epoch } }) + '\n',
    );
    return;
  }
  process.stdout.write(
    `switched over through etcd: node ${to} at ${elected.address} is the leader of epoch ${elected.epoch} (was node ${leader.nodeId} at ${leader.address}, epoch ${leader.epoch}); ` +
      `it had applied seq ${lastSeq}, the last before the pause; writes were paused for ${pauseMs.toFixed(0)} ms\n`,
  );
}

/**
 * Polls until follower `id` has durably applied `seq`: acknowledged it to the leader as a
 * --sync follower (the leader's Status), or, for a follower the leader does not list (a
 * chained one), says so itself.
 */
async function waitApplied(leaderAddress: string, address: string, id: number, seq: bigint, security: ClientSecurity, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = 'nothing yet';
  for (;;) {
    try {
      const s = await fetchStatus(leaderAddress, security, STATUS_PROBE_TIMEOUT_MS);
      const f = s.followers.find((x) => x.followerId === id);
      if (f) {
        seen = `it acknowledged seq ${f.appliedSeq}${f.durable ? '' : ' (not durably)'}`;
        if (f.durable && BigInt(f.appliedSeq) >= seq) return;
      } else {
        const own = await fetchStatus(address, security, STATUS_PROBE_TIMEOUT_MS, 'follower');
        seen = `it applied seq ${own.self?.appliedSeq ?? '?'} (as it says; the leader does not list it)`;
        if (own.self?.durable && BigInt(own.self.appliedSeq) >= seq) return;
      }
    } catch (err) {
      seen = (err as Error).message;
    }
    if (Date.now() > deadline) throw new ReplicatorError(ErrorCode.DEADLINE_EXCEEDED, `follower ${id} did not durably apply seq ${seq} within ${timeoutMs} ms (${seen})`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function describeLeader(l: LeaderRecord | undefined): string {
  return l ? `node ${l.nodeId} at ${l.address}${l.epoch === undefined ? ', epoch not announced yet' : `, epoch ${l.epoch}`}` : 'no leader';
}

/** Polls etcd until it names node `to` the leader at an epoch above fromEpoch; another node elected instead fails at once. */
async function waitElected(d: EtcdDiscovery, to: number, fromEpoch: number): Promise<ElectedLeader> {
  const deadline = Date.now() + ELECTION_WAIT_MS;
  let last: LeaderRecord | undefined;
  let failure = '';
  for (;;) {
    try {
      last = await d.leader();
      failure = '';
      if (last?.epoch !== undefined && last.epoch > fromEpoch) {
        if (last.nodeId === to) return last as ElectedLeader;
        throw refused(`etcd elected ${describeLeader(last)} instead`);
      }
    } catch (err) {
      if (isReplicatorError(err, ErrorCode.PROMOTION_REFUSED)) throw err;
      failure = `; ${(err as Error).message}`;
    }
    if (Date.now() > deadline) {
      throw new ReplicatorError(ErrorCode.DEADLINE_EXCEEDED, `etcd did not name node ${to} the leader within ${ELECTION_WAIT_MS} ms (it names ${describeLeader(last)}${failure})`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
