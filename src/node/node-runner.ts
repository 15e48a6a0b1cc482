import type { Registry } from 'prom-client';
import type * as grpc from '@grpc/grpc-js';
import { ClusterView } from '../common/cluster-view.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { startFollower, type FollowerNode, type FollowerOptions } from '../follower/follower-node.js';
import { startMaster, type MasterNode, type MasterOptions } from '../master/master-node.js';
import { DEFAULT_PAUSE_MS, type LeaseGate } from '../master/write-fence.js';
import type { AdminHandlers } from '../wire/admin-handlers.js';
import { toServiceError } from '../wire/grpc-status.js';
import { seqFromWire, seqToWire } from '../wire/seq.js';
import type { ClientSecurity } from '../wire/security.js';
import { FollowNotifier } from './follow-notifier.js';
import { startDownstream } from './downstream.js';

/** Everything a node needs to run either role on one data directory and one address. */
export interface RunnerConfig {
  /** --node-id (a master) or the follower id; a node without one cannot rejoin as a follower. */
  nodeId: number | undefined;
  master: Omit<MasterOptions, 'cluster' | 'admin' | 'beginEpoch'>;
  follower: Omit<FollowerOptions, 'followerId' | 'masterAddress' | 'upstream' | 'downstream' | 'cluster' | 'admin'>;
  /** How to reach other nodes (Follow notices). */
  clientSecurity?: ClientSecurity;
  log: Logger;
  /** With --etcd: every master role this node runs takes writes only while the lease is held. */
  leaseGate?: LeaseGate;
  /** With --etcd: only followers this admits count for acknowledgements (the sync set). */
  ackFilter?: (followerId: number) => boolean;
  /** Served beside each role's metrics (failover metrics). */
  extraMetrics?: Registry;
  /** With --etcd: roles are decided by etcd's election (its name, for messages); Promote is refused. */
  coordinated?: string;
}

/** Where this node stands, as a failover candidate publishes it (src/node/failover-agent.ts). */
export interface NodePosition {
  role: 'master' | 'follower' | 'deposed';
  appliedSeq: bigint;
  appliedChecksum: number;
  /** The newest epoch of its log's history. */
  epoch: number;
}

type Role = { kind: 'master'; node: MasterNode } | { kind: 'follower'; node: FollowerNode; upstream: string };

/**
 * One node process: holds one role at a time on one data directory and one address, and
 * changes role in place when told to (docs/roles.md): Admin.Promote makes a follower the
 * master of a new epoch; Admin.Follow re-points a follower, or deposes a master, which then
 * rejoins as a follower. A role change answers the call first, then closes the role (its
 * server and store) and opens the other on the same directory and address.
 */
export class NodeRunner {
  private role!: Role;
  private changing: Promise<void> = Promise.resolve();
  private stopped = false;
  private notifier: FollowNotifier | undefined;
  readonly cluster: ClusterView;
  address = '';
  private reportFailure!: (err: unknown) => void;
  /** Resolves when a role change or the role itself failed: the process must stop. */
  readonly failed = new Promise<unknown>((resolve) => (this.reportFailure = resolve));

  private constructor(private readonly cfg: RunnerConfig) {
    this.cluster = new ClusterView(cfg.nodeId);
  }

  /** A follower's upstream is the node it streams from (the master or a follower); masterAddress (default: upstream) is the master NOT_MASTER names. */
  static async start(cfg: RunnerConfig, initial: { kind: 'master' } | { kind: 'follower'; upstream: string; masterAddress?: string }): Promise<NodeRunner> {
    const r = new NodeRunner(cfg);
    if (initial.kind === 'master') await r.runMaster(cfg.master.listen);
    else await r.runFollower(cfg.follower.listen, initial.upstream, initial.masterAddress);
    return r;
  }

  /** The node a follower streams from; undefined for a master. */
  get upstream(): string | undefined {
    return this.role.kind === 'follower' ? this.role.upstream : undefined;
  }

  get roleName(): 'master' | 'follower' {
    return this.role.kind;
  }

  get current(): MasterNode | FollowerNode {
    return this.role.node;
  }

  private async runMaster(listen: string, beginEpoch?: number): Promise<void> {
    const node = await startMaster({ ...this.cfg.master, listen, cluster: this.cluster, admin: this.admin(), beginEpoch, leaseGate: this.cfg.leaseGate, ackFilter: this.cfg.ackFilter, extraMetrics: this.cfg.extraMetrics });
    this.address = node.address;
    this.role = { kind: 'master', node };
    node.failed.then((err) => this.reportFailure(err), () => undefined);
  }

  private async runFollower(listen: string, upstream: string, masterAddress = upstream): Promise<void> {
    if (this.cfg.nodeId === undefined) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, 'a node without an id cannot follow');
    this.cluster.observe(this.cluster.seenEpoch, masterAddress);
    const node = await startFollower({
      ...this.cfg.follower,
      listen,
      followerId: this.cfg.nodeId,
      masterAddress,
      upstream,
      downstream: startDownstream,
      heartbeatIntervalMs: this.cfg.master.heartbeatIntervalMs,
      cluster: this.cluster,
      admin: this.admin(),
      extraMetrics: this.cfg.extraMetrics,
    });
    this.address = node.readAddress;
    this.role = { kind: 'follower', node, upstream };
  }

  /** Runs a role change after the current call was answered; a failure stops the process. */
  private change(what: string, body: () => Promise<void>): void {
    this.changing = this.changing.then(async () => {
      if (this.stopped) return;
      try {
        await body();
      } catch (err) {
        this.cfg.log.fatal({ err: (err as Error).message, code: isReplicatorError(err) ? err.code : undefined }, `${what} failed; stopping`);
        this.reportFailure(err);
      }
    });
  }

  /** This node's role and position now. */
  position(): NodePosition {
    const role = this.role;
    if (role.kind === 'master') {
      const wal = role.node.wal;
      return { role: role.node.fence.deposed ? 'deposed' : 'master', appliedSeq: wal.lastSeq, appliedChecksum: wal.lastChecksum, epoch: wal.epoch };
    }
    const store = role.node.store;
    return { role: 'follower', appliedSeq: store.appliedSeq, appliedChecksum: store.appliedChecksum, epoch: store.log.epoch };
  }

  /**
   * Elected by etcd (failover-agent.ts): this node becomes the master of `epoch`, starting
   * at its next seq. A follower stops applying first; a master (not yet elected, or of an
   * older epoch) is reopened with the new epoch. Resolves once the master role serves.
   */
  becomeLeader(epoch: number): Promise<void> {
    return this.changeNow('taking the lead', async () => {
      const role = this.role;
      if (role.kind === 'master' && role.node.wal.epoch >= epoch) return;
      if (role.kind === 'follower') await role.node.subscriber.stop();
      const address = this.address;
      await role.node.close();
      this.cluster.observe(epoch, address);
      await this.runMaster(address, epoch);
    });
  }

  /**
   * etcd names another leader (failover-agent.ts): a master is deposed at once (no write is
   * acknowledged under its epoch from here on) and rejoins as its follower; a follower
   * re-points to it. Resolves once the follower role runs.
   */
  followLeader(address: string, epoch: number): Promise<void> {
    const role = this.role;
    if (role.kind === 'master' && epoch > role.node.wal.epoch) role.node.fence.observe(epoch, address);
    else this.cluster.observe(epoch, address);
    return this.changeNow('following the leader', async () => {
      const now = this.role;
      if (now.kind === 'follower' && now.upstream === address) return;
      const listen = this.address;
      await now.node.close();
      await this.runFollower(listen, address, address);
    });
  }

  /** Like change(), for callers that wait for it; a failure also stops the process. */
  private changeNow(what: string, body: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve) => {
      this.change(what, async () => {
        try {
          await body();
        } finally {
          resolve();
        }
      });
    });
  }

  admin(): AdminHandlers {
    const fail = (err: unknown) => toServiceError(err) as grpc.ServiceError;
    return {
      Promote: (call, callback) => {
        const req = call.request;
        void (async () => {
          const role = this.role;
          if (this.cfg.coordinated) {
            throw new ReplicatorError(ErrorCode.PROMOTION_REFUSED, `this node's role is decided by etcd (${this.cfg.coordinated}): the leader is elected there; use replication-admin switchover --etcd to hand over`);
          }
          if (role.kind !== 'follower') throw new ReplicatorError(ErrorCode.PROMOTION_REFUSED, `this node is the master already (epoch ${(role.node as MasterNode).wal.epoch})`);
          const { store, subscriber } = role.node;
          const minApplied = seqFromWire(req.minAppliedSeq);
          if (store.appliedSeq < minApplied) {
            throw new ReplicatorError(ErrorCode.PROMOTION_REFUSED, `follower ${this.cfg.nodeId} has applied seq ${store.appliedSeq}, the promotion needs at least ${minApplied}`);
          }
          // No entry is applied after this: the new epoch starts right after the last one.
          await subscriber.stop();
          const appliedSeq = store.appliedSeq;
          const epoch = Math.max(this.cluster.seenEpoch, store.log.epoch, req.minEpoch) + 1;
          this.cfg.log.warn({ epoch, appliedSeq: appliedSeq.toString() }, 'promotion: this follower becomes the master');
          callback(null, { epoch, firstSeq: seqToWire(appliedSeq + 1n), address: this.address, appliedSeq: seqToWire(appliedSeq) });
          const notify = (req.notify ?? []).filter((a) => a && a !== this.address);
          this.change('promotion', async () => {
            const address = this.address;
            await role.node.close();
            this.cluster.observe(epoch, address);
            await this.runMaster(address, epoch);
            this.notifier?.stop();
            this.notifier = new FollowNotifier(notify, { upstream: address, epoch, masterAddress: address, epochFirstSeq: seqToWire(appliedSeq + 1n) }, this.cfg.clientSecurity, this.cfg.log);
            this.notifier.start();
          });
        })().catch((err) => callback(fail(err)));
      },
      Follow: (call, callback) => {
        const req = call.request;
        void (async () => {
          const upstream = req.upstream;
          if (!upstream) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, 'Follow needs an upstream address');
          if (upstream === this.address) throw new ReplicatorError(ErrorCode.FOLLOW_LOOP, 'a node cannot follow itself');
          const masterAddress = req.masterAddress || upstream;
          const role = this.role;
          if (role.kind === 'master') {
            const mine = role.node.wal.epoch;
            if (req.epoch <= mine) throw new ReplicatorError(ErrorCode.STALE_EPOCH, `this node is the master of epoch ${mine}; it follows only a master of a newer epoch (asked: ${req.epoch})`);
            // Fenced from this instant: no write is acknowledged under the old epoch.
            role.node.fence.observe(req.epoch, masterAddress, seqFromWire(req.epochFirstSeq));
            this.cfg.log.warn({ epoch: req.epoch, master: masterAddress }, 'deposed: a newer epoch has a master; this node stops taking writes and rejoins as a follower');
            callback(null, { role: this.cfg.nodeId === undefined ? 'deposed' : 'follower', appliedSeq: seqToWire(role.node.wal.lastSeq), epoch: mine });
            if (this.cfg.nodeId === undefined) {
              this.cfg.log.error(`this master has no --node-id, so it cannot rejoin on its own: stop it and run follower-client <id> --data-dir <its data dir> --master ${masterAddress}`);
              return;
            }
            this.notifier?.stop();
            this.change('stepping down', async () => {
              const address = this.address;
              await role.node.close();
              await this.runFollower(address, upstream, masterAddress);
            });
            return;
          }
          if (req.epoch < this.cluster.seenEpoch) throw new ReplicatorError(ErrorCode.STALE_EPOCH, `this node has seen epoch ${this.cluster.seenEpoch}; refusing to follow a master of epoch ${req.epoch}`);
          this.cluster.observe(req.epoch, masterAddress);
          callback(null, { role: 'follower', appliedSeq: seqToWire(role.node.store.appliedSeq), epoch: role.node.store.log.epoch });
          if (role.upstream === upstream) return;
          this.change('re-pointing', async () => {
            const address = this.address;
            await role.node.close();
            await this.runFollower(address, upstream, masterAddress);
          });
        })().catch((err) => callback(fail(err)));
      },
      PauseWrites: (call, callback) => {
        const req = call.request;
        void (async () => {
          const role = this.role;
          if (role.kind !== 'master') throw new ReplicatorError(ErrorCode.NOT_MASTER, 'only a master takes writes to pause');
          if (req.resume) {
            role.node.resumeWrites();
            return { lastSeq: seqToWire(role.node.wal.lastSeq), epoch: role.node.wal.epoch, paused: false };
          }
          const lastSeq = await role.node.pauseWrites(req.timeoutMs || DEFAULT_PAUSE_MS);
          return { lastSeq: seqToWire(lastSeq), epoch: role.node.wal.epoch, paused: true };
        })().then((res) => callback(null, res), (err) => callback(fail(err)));
      },
    };
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.notifier?.stop();
    await this.changing;
    await this.role?.node.close();
  }
}
