import { EventEmitter } from 'node:events';
import type { Lease } from 'etcd3';
import { Backoff } from '../common/backoff.js';
import { memberKey, MEMBERS_DIR, type EtcdConnection } from './etcd-connection.js';
import { checkMember, decodeMember, encodeMember, type MemberRecord } from './records.js';

/**
 * Every node's position in etcd, at members/<nodeId>: what a candidate compares itself
 * with before campaigning (only a node with every acknowledged write may lead).
 *
 * A record lives under its node's own lease (not the leader's: a node's record must outlive
 * its leadership), so a node that dies or loses etcd disappears after the TTL, and a record
 * that is present belongs to a node that renewed it recently. A record is a snapshot: the
 * node may have applied more since. Publishing is rate-limited (at most one put per
 * minIntervalMs) and always ends with the latest record: updates in between coalesce.
 */

export const DEFAULT_MEMBER_TTL_SECONDS = 5;
export const DEFAULT_MEMBER_MIN_INTERVAL_MS = 200;

export interface MemberPublisherOptions {
  /** The record's lease TTL: how long a dead node stays listed. Default 5 s. */
  ttlSeconds?: number;
  /** The least time between two puts. Default 200 ms. */
  minIntervalMs?: number;
}

export interface MemberPublisherEvents {
  /** This record is in etcd now. */
  published: [record: MemberRecord];
  /** A put failed or the lease was lost; it is retried after a backoff. */
  retrying: [err: Error];
}

/** A node's own record: published at once, then on every change, until close(). */
export class MemberPublisher extends EventEmitter<MemberPublisherEvents> {
  readonly ttlSeconds: number;
  readonly minIntervalMs: number;
  private record: MemberRecord;
  private lease: Lease;
  private leaseLost = false;
  /** Bumped by each update; `published` is the version last put. */
  private version = 1;
  private publishedVersion = 0;
  private lastPutAt = -Infinity;
  private putting = false;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private readonly backoff = new Backoff();

  constructor(
    private readonly conn: EtcdConnection,
    record: MemberRecord,
    options: MemberPublisherOptions = {},
  ) {
    super();
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_MEMBER_TTL_SECONDS;
    this.minIntervalMs = options.minIntervalMs ?? DEFAULT_MEMBER_MIN_INTERVAL_MS;
    this.record = checkMember(record);
    this.lease = this.newLease();
    this.schedule(0);
  }

  /** The record as last updated (published, or about to be). */
  get current(): MemberRecord {
    return this.record;
  }

  /** Changes fields of the record (never the node id); published within minIntervalMs, or when etcd is back. */
  update(patch: Partial<Omit<MemberRecord, 'nodeId'>>): void {
    if (this.closed) return;
    const next = checkMember({ ...this.record, ...patch, nodeId: this.record.nodeId });
    if (encodeMember(next) === encodeMember(this.record)) return;
    this.record = next;
    this.version++;
    this.schedule(Math.max(0, this.lastPutAt + this.minIntervalMs - performance.now()));
  }

  /** Resolves once the record as it is now is in etcd; rejects after timeoutMs. */
  flush(timeoutMs = 10_000): Promise<void> {
    const wanted = this.version;
    if (this.publishedVersion >= wanted) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onPublished = () => {
        if (this.publishedVersion < wanted) return;
        clearTimeout(timer);
        this.off('published', onPublished);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('published', onPublished);
        reject(new Error(`member ${this.record.nodeId}'s record was not published within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('published', onPublished);
    });
  }

  /** Stops publishing and revokes the lease, which removes the record (best effort: otherwise it expires). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await this.lease.revoke().catch(() => undefined);
  }

  /** A lease of our own. When etcd3 gives up on it (expired, or etcd gone for 2 TTLs), the next put takes a new one. */
  private newLease(): Lease {
    const lease = this.conn.ns.lease(this.ttlSeconds);
    lease.on('lost', (err) => {
      if (this.closed || lease !== this.lease) return;
      this.leaseLost = true;
      this.publishedVersion = 0; // the record went with the lease
      this.emit('retrying', err);
      this.schedule(this.backoff.next());
    });
    return lease;
  }

  /** Puts the record after delayMs unless a put is already due or running (which then reschedules). */
  private schedule(delayMs: number): void {
    if (this.closed || this.timer || this.putting) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.put();
    }, delayMs);
  }

  private async put(): Promise<void> {
    if (this.closed || this.publishedVersion >= this.version) return;
    if (this.leaseLost) {
      this.leaseLost = false;
      this.lease = this.newLease();
    }
    const version = this.version;
    const record = this.record;
    this.putting = true;
    let retryIn: number | undefined;
    try {
      await this.lease.put(memberKey(record.nodeId)).value(encodeMember(record));
      this.lastPutAt = performance.now();
      this.publishedVersion = Math.max(this.publishedVersion, version);
      this.backoff.reset();
      this.emit('published', record);
    } catch (err) {
      if (!this.closed) this.emit('retrying', err as Error);
      retryIn = this.backoff.next();
    } finally {
      this.putting = false;
    }
    if (this.publishedVersion < this.version) this.schedule(retryIn ?? Math.max(0, this.lastPutAt + this.minIntervalMs - performance.now()));
  }
}

/** Every published record of the cluster, by node id; records that do not parse are returned apart, never guessed at. */
export async function listMembers(conn: EtcdConnection): Promise<{ members: MemberRecord[]; malformed: { key: string; error: string }[] }> {
  const res = await conn.ns.getAll().prefix(MEMBERS_DIR).exec();
  const members: MemberRecord[] = [];
  const malformed: { key: string; error: string }[] = [];
  for (const kv of res.kvs) {
    try {
      members.push(decodeMember(kv.value.toString('utf8')));
    } catch (err) {
      malformed.push({ key: kv.key.toString('utf8'), error: (err as Error).message });
    }
  }
  members.sort((a, b) => a.nodeId - b.nodeId);
  return { members, malformed };
}
