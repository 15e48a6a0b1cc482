import { EventEmitter } from 'node:events';
import type { Namespace, Watcher } from 'etcd3';
import { Backoff } from '../common/backoff.js';
import { LEADER_ELECTION, type EtcdConnection } from './etcd-connection.js';
import { decodeLeader, type LeaderRecord } from './records.js';

/**
 * Discovery: who leads the cluster now, and every change: the oldest key under the
 * election prefix, as candidates count it (etcd3's Campaign, etcd's Go recipe).
 *
 * Not etcd3's ElectionObserver: when several candidates put their keys while there is no
 * leader and the puts reach it in one watch response, it takes the last of them (the Go
 * client takes the first), then watches only that key. A watcher then names a younger
 * candidate, without epoch, until that candidate's key goes, and never sees the real
 * leader announce its epoch: a follower waits for it forever. So every change under the
 * prefix makes this watch read the oldest key again.
 *
 * What a watcher sees can lag behind etcd, and while etcd is unreachable it keeps the last
 * leader it saw: a node acting on it may reach a deposed master, which is why the leader's
 * record carries its epoch and a master of an older epoch refuses to serve as one. A
 * leader whose record has no epoch yet has just won and acknowledges nothing yet.
 */

/** The current leader, read once (undefined: none). */
export async function readLeader(conn: EtcdConnection): Promise<LeaderRecord | undefined> {
  const value = await conn.ns.election(LEADER_ELECTION).leader();
  return value === undefined ? undefined : decodeLeader(value);
}

export interface LeaderWatchEvents {
  /** The leader changed: another node, the same node with its epoch announced, or none (undefined). */
  change: [leader: LeaderRecord | undefined];
  /** The observer failed (etcd unreachable, say) and is started again after a backoff; current() is kept. */
  retrying: [err: Error];
  /** A leader record that does not parse: reported, and read as no leader. */
  malformed: [err: Error, value: string];
}

export class LeaderWatch extends EventEmitter<LeaderWatchEvents> {
  private leader?: LeaderRecord;
  private watcher?: Watcher;
  private closed = false;
  /** The revision of the newest read applied: a slower read of an older revision never overwrites it. */
  private readRevision = 0n;
  private reading = false;
  private readAgain = false;
  private retryTimer?: NodeJS.Timeout;
  private readonly backoff = new Backoff();

  private constructor(private readonly conn: EtcdConnection) {
    super();
  }

  /** Starts watching; resolves once the current leader (or that there is none) is known. */
  static async start(conn: EtcdConnection): Promise<LeaderWatch> {
    const w = new LeaderWatch(conn);
    await w.observe();
    return w;
  }

  /** The leader last seen (undefined: none). */
  current(): LeaderRecord | undefined {
    return this.leader;
  }

  /** Resolves with the first leader (current or coming) that satisfies pred; rejects after timeoutMs. */
  waitFor(pred: (leader: LeaderRecord | undefined) => boolean, timeoutMs: number): Promise<LeaderRecord | undefined> {
    if (pred(this.leader)) return Promise.resolve(this.leader);
    return new Promise((resolve, reject) => {
      const onChange = (l: LeaderRecord | undefined) => {
        if (!pred(l)) return;
        clearTimeout(timer);
        this.off('change', onChange);
        resolve(l);
      };
      const timer = setTimeout(() => {
        this.off('change', onChange);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a leader change; the leader is ${JSON.stringify(this.leader)}`));
      }, timeoutMs);
      this.on('change', onChange);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const w = this.watcher;
    this.watcher = undefined;
    await w?.cancel().catch(() => undefined);
  }

  private election(): Namespace {
    return this.conn.ns.namespace(`election/${LEADER_ELECTION}/`);
  }

  /** The oldest candidate's value, and the revision it was read at. */
  private async readOldest(): Promise<{ value: string | undefined; revision: bigint }> {
    const res = await this.election().getAll().sort('Create', 'Ascend').limit(1).exec();
    return { value: res.kvs[0]?.value.toString(), revision: BigInt(res.header.revision) };
  }

  /** Reads the leader, then watches every put and delete under the prefix after that read. */
  private async observe(): Promise<void> {
    const first = await this.readOldest();
    const w = await this.election().watch().prefix('').startRevision(String(first.revision + 1n)).create();
    if (this.closed) {
      await w.cancel().catch(() => undefined);
      return;
    }
    this.watcher = w;
    this.backoff.reset();
    // Any key created, proclaimed or deleted may change who leads or what it announces.
    w.on('data', () => this.watcher === w && this.refresh());
    w.on('error', (err) => {
      if (this.watcher !== w) return;
      this.watcher = undefined;
      w.cancel().catch(() => undefined);
      this.observeLater(err);
    });
    this.apply(first);
  }

  /** One read at a time; changes during a read make one more read after it. */
  private refresh(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    this.readOldest()
      .then((r) => this.apply(r))
      .catch((err: Error) => {
        // etcd unreachable: the watch is started over (after a backoff), with a fresh read.
        const w = this.watcher;
        this.watcher = undefined;
        w?.cancel().catch(() => undefined);
        if (w) this.observeLater(err);
      })
      .finally(() => {
        this.reading = false;
        if (this.readAgain && this.watcher) {
          this.readAgain = false;
          this.refresh();
        }
      });
  }

  private apply(r: { value: string | undefined; revision: bigint }): void {
    if (this.closed || r.revision < this.readRevision) return;
    this.readRevision = r.revision;
    this.set(r.value);
  }

  private set(value: string | undefined): void {
    let next: LeaderRecord | undefined;
    if (value !== undefined) {
      try {
        next = decodeLeader(value);
      } catch (err) {
        this.emit('malformed', err as Error, value);
      }
    }
    if (JSON.stringify(next) === JSON.stringify(this.leader)) return;
    this.leader = next;
    this.emit('change', next);
  }

  /** Observes again after a backoff, until it works or the watch is closed. */
  private observeLater(err: Error): void {
    if (this.closed) return;
    this.emit('retrying', err);
    this.retryTimer = setTimeout(() => this.observe().catch((e: Error) => this.observeLater(e)), this.backoff.next());
  }
}
