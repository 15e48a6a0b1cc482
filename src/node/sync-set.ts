import type { EtcdConnection } from '../coordination/etcd-connection.js';
import type { LeaderLease } from '../coordination/leader-lease.js';
import type { Logger } from '../common/logger.js';
import type { FollowerRegistry } from '../master/follower-registry.js';
import type { SyncSet } from './failover-eligibility.js';
import { isConnectedState } from '../common/replication-state.js';

/** The sync set's key, relative to the cluster's prefix: not leased, it outlives its master. */
export const SYNC_KEY = 'sync';

/** The sync set the last master published, or undefined (none yet, or unreadable: then no constraint is known). */
export async function readSyncSet(conn: EtcdConnection): Promise<SyncSet | undefined> {
  const text = await conn.ns.get(SYNC_KEY).string();
  if (text === null) return undefined;
  const v = JSON.parse(text) as SyncSet;
  if (!Number.isInteger(v.epoch) || !Array.isArray(v.members) || !v.members.every(Number.isInteger) || !Number.isInteger(v.ackFollowers)) {
    throw new Error(`the sync set in etcd is malformed: ${text}`);
  }
  return v;
}

/** A switchover through etcd names the node that is to lead next (relative key; leased, so a failed switchover's key goes away). */
export const HANDOVER_KEY = 'handover';

export interface Handover {
  /** The node id that is to lead next. */
  to: number;
  /** The leader's epoch when the switchover began: only that leader resigns for it. */
  fromEpoch: number;
}

/** The switchover under way, if any. */
export async function readHandover(conn: EtcdConnection): Promise<Handover | undefined> {
  const text = await conn.ns.get(HANDOVER_KEY).string();
  if (text === null) return undefined;
  const v = JSON.parse(text) as Handover;
  if (!Number.isInteger(v.to) || !Number.isInteger(v.fromEpoch)) throw new Error(`the handover key in etcd is malformed: ${text}`);
  return v;
}

/**
 * The leader's side of the sync set (Patroni's synchronous_mode_strict): which followers'
 * acknowledgements this master counts.
 *
 * Invariant: a follower's acknowledgement counts only once the set naming it is in etcd
 * (written in a transaction that holds only while this node's election key exists). So
 * every write this master acknowledged with N followers is on N members of the set etcd
 * holds, and a failover candidate that sees enough of them can tell it has every such
 * write (failover-eligibility.ts). The set starts empty at each epoch and only grows within
 * it: removing a member would need proof that the others hold what it acknowledged.
 */
export class SyncSetKeeper {
  private readonly members = new Set<number>();
  private written = false;

  constructor(
    private readonly conn: EtcdConnection,
    private readonly epoch: number,
    private readonly ackFollowers: number,
    private readonly log: Logger,
  ) {}

  /** For the master's registry: whether a follower's acknowledgements count. */
  readonly counts = (followerId: number): boolean => this.members.has(followerId);

  get current(): SyncSet {
    return { epoch: this.epoch, members: [...this.members].sort((a, b) => a - b), ackFollowers: this.ackFollowers };
  }

  /** Adds the durable followers connected now to the set (etcd first, then counted). */
  async step(registry: FollowerRegistry, lease: LeaderLease): Promise<void> {
    const key = lease.campaignKey;
    if (!key || !lease.canAcknowledge()) return;
    const joining = registry.list().filter((r) => r.durable && isConnectedState(r.state) && !this.members.has(r.id)).map((r) => r.id);
    if (this.written && joining.length === 0) return;
    const next: SyncSet = { ...this.current, members: [...this.members, ...joining].sort((a, b) => a - b) };
    const res = await this.conn.client
      .if(key, 'Create', '>', 0)
      .then(this.conn.ns.put(SYNC_KEY).value(JSON.stringify(next)))
      .commit();
    if (!res.succeeded) throw new Error('the sync set was not written: this node no longer holds the leader key');
    this.written = true;
    for (const id of joining) {
      this.members.add(id);
      registry.admitted(id);
    }
    if (joining.length > 0) this.log.info({ syncSet: next.members, epoch: this.epoch }, 'failover: followers join the sync set; their acknowledgements count from now on');
  }
}
