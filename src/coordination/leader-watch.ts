import { EventEmitter } from 'node:events';
import type { ElectionObserver } from 'etcd3';
import { Backoff } from '../common/backoff.js';
import { LEADER_ELECTION, type EtcdConnection } from './etcd-connection.js';
import { decodeLeader, type LeaderRecord } from './records.js';

/**
 * Discovery: who leads the cluster now, and every change, through etcd3's election
 * observer (it follows the oldest key under the election prefix, as candidates do).
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
  private observer?: ElectionObserver;
  private closed = false;
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
    const o = this.observer;
    this.observer = undefined;
    await o?.cancel().catch(() => undefined);
  }

  private async observe(): Promise<void> {
    const o = await this.conn.ns.election(LEADER_ELECTION).observe();
    if (this.closed) {
      await o.cancel().catch(() => undefined);
      return;
    }
    this.observer = o;
    this.backoff.reset();
    o.on('change', (value) => this.observer === o && this.set(value));
    o.on('error', (err) => {
      // etcd3 ends an observer's loop on its first error: a new one replaces it.
      if (this.observer !== o) return;
      this.observer = undefined;
      this.observeLater(err);
    });
    this.set(o.leader());
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
