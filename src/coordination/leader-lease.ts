import { EventEmitter } from 'node:events';
import type { Campaign } from 'etcd3';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { LEADER_ELECTION, type EtcdConnection } from './etcd-connection.js';
import { LeaseFence, monotonicNow, type MonotonicClock } from './lease-fence.js';
import { keepaliveOnce } from './lease-keepalive.js';
import { claimEpoch } from './epoch-claim.js';
import { decodeLeader, encodeLeader, MAX_EPOCH, type LeaderRecord } from './records.js';

/**
 * Campaigning for the leader key, holding it, and fencing oneself (docs: the failover issue).
 *
 * The election is etcd3's (the recipe of etcd's Go client): every candidate creates a key
 * under the election prefix, attached to a lease of its own; the live key with the lowest
 * create revision is the leader, and a candidate is elected once every older key is gone.
 * No election logic lives here: this class adds the epoch, the self-fencing deadline and
 * the events a master needs.
 *
 * The epoch is the leader key's create revision, or with epochFloor the one epoch-claim.ts
 * takes (also above every epoch before). etcd revisions are unique (one per
 * transaction; the campaign creates its key in a transaction of its own) and increase, and
 * a later leader's key is always younger than an earlier leader's: while the earlier one
 * led, its key was the oldest, so the later one's key either existed then (and is younger)
 * or was created afterwards (at a higher revision). So epochs of successive leaders
 * strictly increase, and no two leaders ever share one.
 *
 * States: campaigning -> leader <-> fenced, and from any of these to lost or resigned (final).
 * canAcknowledge() is true only as leader and before the fence's deadline: strictly before
 * etcd can expire the lease and elect a successor (lease-fence.ts).
 */

export const DEFAULT_LEADER_TTL_SECONDS = 5;
/** Between attempts to confirm the lease right after winning. */
const OFFICE_RETRY_MS = 100;

export interface LeaderLeaseOptions {
  nodeId: number;
  /** host:port where this node serves as master. */
  address: string;
  /** The lease's TTL: how long a dead leader holds the key. Default 5 s. */
  ttlSeconds?: number;
  /** How long before the lease can expire the leader stops acknowledging; default max(1 s, TTL/3). */
  marginMs?: number;
  /** How often the leader sends a keepalive of its own (lease-keepalive.ts); default TTL/4. */
  renewIntervalMs?: number;
  /** Monotonic milliseconds; tests inject one. */
  clock?: MonotonicClock;
  /**
   * The newest epoch this node knows of, read when elected: the leader's epoch is above it
   * and above the cluster's last one (epoch-claim.ts). Without it: the key's create revision
   * only.
   */
  epochFloor?: () => number;
}

export type LeaderLeaseState = 'campaigning' | 'leader' | 'fenced' | 'lost' | 'resigned';

/** A leader's record once it has taken office: the epoch is known. */
export type ElectedLeader = Required<LeaderRecord>;

export interface LeaderLeaseEvents {
  /** Won, announced the epoch, and may acknowledge until the deadline. */
  elected: [leader: ElectedLeader];
  /** etcd confirmed the lease: the deadline (clock time) moved forward. */
  renewed: [deadline: number];
  /** The deadline passed without a confirmation: acknowledge nothing until 'renewed'. */
  fenced: [];
  /** Final: the lease or the campaign is gone (expired, revoked, or etcd3 gave up on it). */
  lost: [err: Error];
  /** Final: resign() handed the key over. */
  resigned: [];
}

export class LeaderLease extends EventEmitter<LeaderLeaseEvents> {
  readonly fence: LeaseFence;
  readonly ttlSeconds: number;
  readonly renewIntervalMs: number;
  private readonly clock: MonotonicClock;
  private readonly campaign: Campaign;
  private stateNow: LeaderLeaseState = 'campaigning';
  private leader?: ElectedLeader;
  private leaseId?: string;
  private key?: string;
  private renewTimer?: NodeJS.Timeout;
  private fenceTimer?: NodeJS.Timeout;

  /** Starts campaigning at once; listen for 'elected' and 'lost' (or await whenElected()). */
  constructor(
    private readonly conn: EtcdConnection,
    readonly options: LeaderLeaseOptions,
  ) {
    super();
    this.clock = options.clock ?? monotonicNow;
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_LEADER_TTL_SECONDS;
    this.fence = new LeaseFence(this.ttlSeconds, options.marginMs, this.clock);
    this.renewIntervalMs = options.renewIntervalMs ?? this.fence.ttlMs / 4;
    if (!(this.renewIntervalMs > 0 && this.renewIntervalMs < this.fence.ttlMs - this.fence.marginMs)) {
      throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `the renewal interval must be above 0 and below TTL - margin (${this.fence.ttlMs - this.fence.marginMs} ms), got ${this.renewIntervalMs}`);
    }
    const value = encodeLeader({ nodeId: options.nodeId, address: options.address });
    decodeLeader(value); // the checks readers apply, so a bad node id or address fails here
    this.campaign = conn.ns.election(LEADER_ELECTION, this.ttlSeconds).campaign(value);
    this.campaign.on('elected', () => void this.takeOffice());
    this.campaign.on('error', (err) => this.lose(err));
  }

  get state(): LeaderLeaseState {
    return this.stateNow;
  }

  /** The record it announced once elected (with the epoch). */
  get elected(): ElectedLeader | undefined {
    return this.leader;
  }

  /** The absolute election key this candidate holds (once known): a transaction guarded by its existence holds only while this node leads. */
  get campaignKey(): string | undefined {
    return this.key;
  }

  get epoch(): number | undefined {
    return this.leader?.epoch;
  }

  /**
   * Whether this node may acknowledge a write now: it holds the key, and etcd cannot yet
   * have expired its lease. Check it right before each acknowledgement leaves.
   */
  canAcknowledge(): boolean {
    return this.stateNow === 'leader' && this.fence.canAct();
  }

  /** When canAcknowledge() turns false unless etcd confirms the lease again (clock time); undefined unless leading. */
  acknowledgeDeadline(): number | undefined {
    return this.stateNow === 'leader' ? this.fence.deadline() : undefined;
  }

  /** Resolves once elected (and the epoch announced); rejects if the campaign ends first. */
  whenElected(): Promise<ElectedLeader> {
    if (this.leader && (this.stateNow === 'leader' || this.stateNow === 'fenced')) return Promise.resolve(this.leader);
    if (this.stateNow === 'lost' || this.stateNow === 'resigned') return Promise.reject(new Error(`the campaign has ended (${this.stateNow})`));
    return new Promise((resolve, reject) => {
      const onLost = (err: Error) => done(() => reject(err));
      const onResigned = () => done(() => reject(new Error('resigned before being elected')));
      const onElected = (l: ElectedLeader) => done(() => resolve(l));
      const done = (settle: () => void) => {
        this.off('elected', onElected).off('lost', onLost).off('resigned', onResigned);
        settle();
      };
      this.on('elected', onElected).on('lost', onLost).on('resigned', onResigned);
    });
  }

  /**
   * Hands the key over: stops acknowledging first, then revokes the lease, which deletes the
   * key so the next candidate is elected at once instead of after the TTL. Rejects when etcd
   * cannot be told; the lease then expires on its own and this node acknowledges nothing.
   */
  async resign(): Promise<void> {
    if (this.stateNow === 'lost' || this.stateNow === 'resigned') return;
    this.end('resigned');
    this.emit('resigned');
    await this.campaign.resign();
  }

  /** resign(), whatever etcd says: for shutting down. The connection stays open (it is shared). */
  async close(): Promise<void> {
    await this.resign().catch(() => undefined);
  }

  /** Elected: confirm the lease, learn the epoch, announce it, and only then lead. */
  private async takeOffice(): Promise<void> {
    try {
      const key = await this.campaign.getCampaignKey();
      this.key = key;
      this.leaseId = key.slice(this.conn.leaderElectionPrefix.length);
      // A fresh confirmation first: the campaign may have waited long for its predecessor,
      // and the deadline must rest on a keepalive etcd answered, not on the grant. etcd may
      // be electing a leader of its own just now: retried for up to a TTL.
      const giveUpAt = this.clock() + this.fence.ttlMs;
      for (;;) {
        const alive = await this.renewOnce().catch((err: unknown) => {
          if (this.clock() >= giveUpAt) throw err;
          return false;
        });
        if (alive || this.stateNow !== 'campaigning') break;
        await new Promise((r) => setTimeout(r, OFFICE_RETRY_MS));
      }
      if (this.stateNow !== 'campaigning') return;
      const kv = (await this.conn.client.get(key).exec()).kvs[0];
      if (!kv || kv.lease !== this.leaseId) throw new Error(`the election key ${key} is gone or belongs to another lease`);
      const revision = Number(kv.create_revision);
      if (!Number.isSafeInteger(revision) || revision < 1 || revision > MAX_EPOCH) throw new Error(`the election key's create revision ${kv.create_revision} does not fit an epoch (u32)`);
      const floor = this.options.epochFloor;
      const epoch = floor ? await claimEpoch(this.conn, key, revision, floor()) : revision;
      if (this.stateNow !== 'campaigning') return;
      const leader: ElectedLeader = { nodeId: this.options.nodeId, address: this.options.address, epoch };
      // Conditional on the key's create revision: fails if the key was lost meanwhile.
      await this.campaign.proclaim(encodeLeader(leader));
      if (this.stateNow !== 'campaigning') return;
      this.leader = leader;
      this.stateNow = 'leader';
      this.renewTimer = setInterval(() => void this.renewOnce().catch(() => undefined), this.renewIntervalMs);
      this.armFence();
      this.emit('elected', leader);
    } catch (err) {
      this.lose(err as Error);
    }
  }

  /**
   * One keepalive of our own: true if etcd confirmed the lease alive (the deadline moves
   * forward unless a newer keepalive already moved it further); false, and the campaign
   * ends, if etcd says the lease is gone. Rejects if etcd did not answer.
   */
  private async renewOnce(): Promise<boolean> {
    if (this.leaseId === undefined || this.stateNow === 'lost' || this.stateNow === 'resigned') return false;
    const r = await keepaliveOnce(this.conn.ns, this.leaseId, this.fence.ttlMs, this.clock);
    if (r.ttlSeconds <= 0) {
      this.lose(new Error(`the leader lease ${this.leaseId} has expired on etcd`));
      return false;
    }
    // etcd answers with the TTL it granted, which is never below the one asked for; the
    // fence's arithmetic rests on that, so a shorter one ends the campaign rather than lie.
    if (r.ttlSeconds < this.ttlSeconds) {
      this.lose(new Error(`etcd renewed the leader lease for ${r.ttlSeconds} s, less than the ${this.ttlSeconds} s it was granted for`));
      return false;
    }
    if (this.fence.confirm(r.sentAt)) {
      // Safe to lead again after 'fenced': the lease is alive, so the key is ours still and
      // nobody else can have been elected meanwhile (a key never comes back once deleted).
      if (this.stateNow === 'fenced') this.stateNow = 'leader';
      if (this.stateNow === 'leader') {
        this.armFence();
        this.emit('renewed', this.fence.deadline());
      }
    }
    return true;
  }

  /** A timer for the deadline, so 'fenced' is emitted; canAcknowledge() reads the clock itself and never waits for it. */
  private armFence(): void {
    clearTimeout(this.fenceTimer);
    const check = () => {
      if (this.stateNow !== 'leader') return;
      if (this.fence.canAct()) {
        this.fenceTimer = setTimeout(check, Math.max(1, this.fence.remainingMs()));
        return;
      }
      this.stateNow = 'fenced';
      this.emit('fenced');
    };
    this.fenceTimer = setTimeout(check, Math.max(1, this.fence.remainingMs()));
  }

  private lose(err: Error): void {
    if (this.stateNow === 'lost' || this.stateNow === 'resigned') return;
    this.end('lost');
    // Best effort, so a successor need not wait out the TTL when etcd is still reachable.
    this.campaign.resign().catch(() => undefined);
    this.emit('lost', err);
  }

  private end(state: 'lost' | 'resigned'): void {
    this.stateNow = state;
    this.fence.revoke();
    clearInterval(this.renewTimer);
    clearTimeout(this.fenceTimer);
  }
}
