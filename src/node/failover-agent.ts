import type { EtcdConnection } from '../coordination/etcd-connection.js';
import { LeaderLease } from '../coordination/leader-lease.js';
import { LeaderWatch } from '../coordination/leader-watch.js';
import { EPOCH_KEY } from '../coordination/epoch-claim.js';
import { listMembers, MemberPublisher } from '../coordination/member-registry.js';
import type { LeaderRecord, MemberRecord } from '../coordination/records.js';
import type { Logger } from '../common/logger.js';
import type { LeaseGate } from '../master/write-fence.js';
import type { NodePosition, NodeRunner } from './node-runner.js';
import { chooseCandidate, type Eligibility } from './failover-eligibility.js';
import { livePositions } from './live-positions.js';
import { NO_CLIENT_SECURITY, type ClientSecurity } from '../wire/security.js';
import { HANDOVER_KEY, readHandover, readSyncSet, SyncSetKeeper } from './sync-set.js';
import type { FailoverMetrics } from './failover-metrics.js';

export interface FailoverOptions {
  conn: EtcdConnection;
  nodeId: number;
  /** The leader lease's TTL (seconds). */
  ttlSeconds: number;
  /** The master's default --ack-followers: with N >= 1 the sync set decides who may take over. */
  ackFollowers: () => number;
  log: Logger;
  metrics?: FailoverMetrics;
  /** How often the agent looks at the cluster (ms); default 200. */
  tickMs?: number;
  /** How to reach the other nodes (their live positions before campaigning). */
  clientSecurity?: ClientSecurity;
  /** A chained follower (--upstream): it keeps its upstream when the leader changes (its upstream re-points). */
  chained?: boolean;
}

/**
 * One node's part in automatic failover (issue: failover on etcd; README "Automatic
 * failover"). Every node with --etcd runs one, whatever its role:
 * - it publishes its position (members/<id>, under a lease of its own);
 * - while etcd names a leader that is not this node, this node follows it (a master is
 *   deposed at once and rejoins as its follower, as a Follow notice would do);
 * - while etcd names no leader, it campaigns only if it is the best candidate it can see
 *   (failover-eligibility.ts); once elected it becomes the master of the epoch etcd gave;
 * - as master it may acknowledge only while its lease holds (the LeaseGate the master's
 *   write fence reads before each write and each answer).
 *
 * Invariant: this node takes the master role with an epoch only after etcd elected it with
 * that epoch; and its master role acknowledges a write only while its lease's deadline
 * (strictly before etcd can expire the lease) has not passed.
 */
export class FailoverAgent {
  private runner: NodeRunner | undefined;
  private lease: LeaderLease | undefined;
  private watch: LeaderWatch | undefined;
  private publisher: MemberPublisher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private closed = false;
  private lastWhy = '';
  private sync: SyncSetKeeper | undefined;
  readonly gate: LeaseGate;
  /** For the master's registry: only the sync set's members count for acknowledgements. */
  readonly ackFilter = (followerId: number): boolean => this.sync?.counts(followerId) ?? false;

  constructor(private readonly opts: FailoverOptions) {
    this.gate = {
      canAcknowledge: () => this.lease?.canAcknowledge() ?? false,
      why: () => {
        const l = this.lease;
        if (!l) return 'not elected';
        if (l.state === 'campaigning') return 'campaigning, not elected yet';
        if (l.state === 'fenced') return 'it could not renew the lease in time and fenced itself';
        return `lease ${l.state}`;
      },
    };
  }

  /** The leader lease's state, for Status: undefined while not campaigning. */
  get leaseState(): LeaderLease['state'] | undefined {
    return this.lease?.state;
  }

  /** Milliseconds before this leader stops acknowledging unless etcd renews its lease. */
  leaseRemainingMs(): number | undefined {
    return this.lease?.state === 'leader' ? this.lease.fence.remainingMs() : undefined;
  }

  leader(): LeaderRecord | undefined {
    return this.watch?.current();
  }

  /** Starts once the node runs: publishes, watches, and looks at the cluster every tick. */
  async attach(runner: NodeRunner): Promise<void> {
    this.runner = runner;
    const { conn, log } = this.opts;
    this.publisher = new MemberPublisher(conn, this.record(runner.position()), { ttlSeconds: this.opts.ttlSeconds });
    this.publisher.on('retrying', (err) => log.warn({ err: err.message }, 'etcd: publishing this node\'s position failed; retrying'));
    this.watch = await LeaderWatch.start(conn);
    this.watch.on('change', (leader) => {
      log.info({ leader }, 'etcd: the leader changed');
      this.kick();
    });
    this.watch.on('retrying', (err) => log.warn({ err: err.message }, 'etcd: watching the leader failed; retrying'));
    this.timer = setInterval(() => this.kick(), this.opts.tickMs ?? 200);
    this.kick();
  }

  private record(p: NodePosition): MemberRecord {
    return {
      nodeId: this.opts.nodeId,
      address: this.runner!.address,
      role: p.role,
      appliedSeq: p.appliedSeq,
      appliedChecksum: p.appliedChecksum,
      epoch: p.epoch,
    };
  }

  private kick(): void {
    if (this.busy || this.closed || !this.runner) return;
    this.busy = true;
    this.step()
      .catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'failover: a step failed; trying again'))
      .finally(() => (this.busy = false));
  }

  private async step(): Promise<void> {
    const runner = this.runner!;
    const pos = runner.position();
    this.publisher!.update(this.record(pos));
    const lease = this.lease;
    const m = this.opts.metrics;
    m?.leader.set(lease?.canAcknowledge() ? 1 : 0);
    m?.leaseRemaining.set((this.leaseRemainingMs() ?? 0) / 1000);
    if (lease && (lease.state === 'leader' || lease.state === 'fenced')) {
      const seen = runner.cluster.seenEpoch;
      if (lease.epoch !== undefined && seen > lease.epoch) {
        // A node has seen a newer epoch than the one etcd gave this leader (etcd lost its
        // data, and this node knew less than its followers): they refuse to follow it, its
        // master role is deposed and acknowledges nothing, and the key it holds would keep
        // every other node from being elected. Resign: the next leader's epoch is claimed
        // above the newest one its node has seen.
        this.opts.log.warn({ epoch: lease.epoch, seenEpoch: seen }, 'failover: a newer epoch than this leader\'s exists; resigning the leader lease');
        await this.dropLease(`epoch ${seen} is newer than this leader's epoch ${lease.epoch}`);
        return;
      }
      const handover = await readHandover(this.opts.conn);
      if (handover && handover.to !== this.opts.nodeId && handover.fromEpoch === lease.epoch) {
        // replication-admin switchover --etcd paused this master's writes and waited until
        // the target applied them all: hand the key over (no acknowledgement after this).
        this.opts.log.warn({ to: handover.to }, 'failover: switchover; resigning the leader lease');
        await this.dropLease(`switchover to node ${handover.to}`);
        return;
      }
      const node = runner.current;
      if (runner.roleName === 'master' && 'registry' in node) await this.sync?.step(node.registry, lease);
      return;
    }
    const leader = this.watch!.current();
    if (leader && leader.epoch !== undefined && !(leader.nodeId === this.opts.nodeId && lease)) {
      // Another node leads (or an earlier process of this node, whose key outlives it until
      // its lease expires: then this node waits for it to go, following nobody).
      if (lease && lease.state === 'campaigning') await this.dropLease('another node was elected');
      if (leader.nodeId === this.opts.nodeId) return this.explain('an earlier run of this node still holds the leader key; waiting for its lease to expire');
      const repoint = pos.role === 'master' || pos.role === 'deposed' || (!this.opts.chained && runner.upstream !== leader.address);
      if (repoint) {
        this.opts.log.warn({ leader }, 'failover: following the leader etcd names');
        this.opts.metrics?.followed.inc();
        await runner.followLeader(leader.address, leader.epoch);
      }
      return;
    }
    if (leader || (lease && lease.state === 'campaigning')) return; // someone just won and is announcing, or this node waits for its turn
    if (lease) await this.dropLease(`the lease ended (${lease.state})`); // lost or resigned: a new campaign needs a new lease
    const handover = await readHandover(this.opts.conn);
    if (handover) {
      // A switchover names the next leader; it checked that node has every write.
      if (handover.to !== this.opts.nodeId) return this.explain(`a switchover hands the lead to node ${handover.to}`);
      this.campaign({ eligible: true, why: 'a switchover names this node' });
      return;
    }
    const verdict = await this.eligibility(pos);
    if (!verdict.eligible) return this.explain(verdict.why);
    this.campaign(verdict);
  }

  private async eligibility(pos: NodePosition): Promise<Eligibility> {
    const { members } = await listMembers(this.opts.conn);
    // Compared with what the members answer now, not with their records (which may be stale).
    const others = await livePositions(members.filter((m) => m.nodeId !== this.opts.nodeId), this.opts.clientSecurity ?? NO_CLIENT_SECURITY);
    const sync = await readSyncSet(this.opts.conn);
    const bootstrapped = (await this.opts.conn.ns.get(EPOCH_KEY).string()) !== null;
    return chooseCandidate({ nodeId: this.opts.nodeId, ...pos }, others, sync, bootstrapped);
  }

  private campaign(verdict: Eligibility): void {
    const runner = this.runner!;
    const { log } = this.opts;
    log.warn({ why: verdict.why }, 'failover: no leader; this node is the best candidate it sees and campaigns');
    const lease = new LeaderLease(this.opts.conn, {
      nodeId: this.opts.nodeId,
      address: runner.address,
      ttlSeconds: this.opts.ttlSeconds,
      epochFloor: () => Math.max(runner.cluster.seenEpoch, runner.position().epoch),
    });
    this.lease = lease;
    lease.on('elected', (leader) => {
      if (this.lease !== lease) return;
      log.warn({ epoch: leader.epoch }, 'failover: elected; this node becomes the master');
      this.opts.metrics?.elected.inc();
      // The master role opens with the gate closed until it serves; the sync set starts empty.
      runner.becomeLeader(leader.epoch).then(
        () => {
          this.sync = new SyncSetKeeper(this.opts.conn, leader.epoch, this.opts.ackFollowers(), log);
          // A switchover that named this node is done; later failovers are decided as usual.
          this.opts.conn.ns.delete().key(HANDOVER_KEY).exec().catch(() => undefined);
          this.kick();
        },
        () => undefined,
      );
    });
    lease.on('renewed', () => this.opts.metrics?.renewals.inc());
    lease.on('fenced', () => {
      this.opts.metrics?.fenced.inc();
      log.error('failover: the leader lease could not be renewed in time; acknowledging no write until etcd confirms it');
    });
    lease.on('lost', (err) => {
      log.error({ err: err.message }, 'failover: the leader lease is lost; this node acknowledges nothing and follows whoever etcd elects next');
      this.kick();
    });
  }

  private async dropLease(why: string): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    this.sync = undefined;
    this.opts.log.info({ why }, 'failover: leaving the election');
    await lease?.close();
  }

  private explain(why: string): void {
    if (why === this.lastWhy) return;
    this.lastWhy = why;
    this.opts.log.info({ why }, 'failover: not campaigning');
  }

  /**
   * Hands the lease over (switchover, or a clean stop): stops acknowledging first, then
   * revokes the lease so the next candidate is elected at once.
   */
  async resign(): Promise<void> {
    await this.dropLease('resigning');
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.dropLease('stopping');
    await this.watch?.close();
    await this.publisher?.close();
  }
}
