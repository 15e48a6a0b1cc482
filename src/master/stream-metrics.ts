import { Counter, Gauge, type Registry } from 'prom-client';
import { ErrorCode } from '../common/errors.js';
import { isConnectedState, STREAM_STATES } from '../common/replication-state.js';
import type { ReplicationLog } from '../storage/interfaces.js';
import type { FollowerRegistry } from './follower-registry.js';
import { lagEntries, lagMs } from './replication-lag.js';

/** What the follower gauges are read from at scrape time: the log served, and the followers streaming from it. */
export interface StreamMetricsSource {
  wal: ReplicationLog;
  followers: FollowerRegistry;
}

/**
 * The metrics of a node's followers and their streams: what a master exports for its
 * followers, and a follower exports for the chained followers that stream from its own
 * log, under the same names and labels (lr_master_*), so one dashboard serves both. Lag is
 * counted against the log served: the master's, or the follower's own (its applied seq).
 * Registered into the registry given (the node's own, served on its /metrics).
 *
 * Counters are bumped per subscription or streamed message, never per entry; gauges are
 * computed when scraped. To add a metric, add it here and to the metric tables of
 * docs/operations.md (master, and "for its downstream followers" of a follower).
 */
export class StreamMetrics {
  readonly streamedEntries: Counter<'follower'>;
  readonly streamedBytes: Counter<'follower'>;
  readonly subscriptions: Counter<'result'>;
  readonly snapshotsSent: Counter;
  /** Errors the node's Master handlers answered (on a follower: Subscribe and Ack of downstream followers). */
  readonly errors: Counter<'code'>;

  constructor(
    /** The node's registry (served on its /metrics). */
    readonly registry: Registry,
    source: StreamMetricsSource,
  ) {
    const { wal, followers } = source;
    const r = [registry];
    this.streamedEntries = new Counter({ name: 'lr_master_streamed_entries_total', help: 'Log entries sent to followers', labelNames: ['follower'] as const, registers: r });
    this.streamedBytes = new Counter({ name: 'lr_master_streamed_bytes_total', help: 'Log entry bytes sent to followers', labelNames: ['follower'] as const, registers: r });
    this.subscriptions = new Counter({
      name: 'lr_master_subscriptions_total',
      help: 'Follower subscriptions, by result (accepted, refused); every reconnect is one',
      labelNames: ['result'] as const,
      registers: r,
    });
    this.snapshotsSent = new Counter({ name: 'lr_master_snapshots_sent_total', help: 'Store snapshots sent to followers', registers: r });
    this.errors = new Counter({ name: 'lr_master_errors_total', help: 'Errors answered by the master\'s RPCs, by error code', labelNames: ['code'] as const, registers: r });
    // Every known label value starts at 0, so a rate() or an alert sees the first increment
    // (a series that appears at 1 has no increase to show).
    for (const result of ['accepted', 'refused']) this.subscriptions.inc({ result }, 0);
    for (const code of Object.values(ErrorCode)) this.errors.inc({ code }, 0);
    for (const f of followers.slots()) this.initFollower(f.id);

    new Gauge({
      name: 'lr_master_followers_connected',
      help: 'Followers with an open stream',
      registers: r,
      collect() {
        this.set(followers.list().filter((f) => isConnectedState(f.state)).length);
      },
    });
    new Gauge({
      name: 'lr_master_followers',
      help: 'Followers known since the node started, by state',
      labelNames: ['state'] as const,
      registers: r,
      collect() {
        for (const s of STREAM_STATES) this.set({ state: s }, followers.list().filter((f) => f.state === s).length);
      },
    });
    // Per-follower gauges are reset first: a record that went away (a refused subscribe, a dropped slot) leaves no stale series.
    const perFollower = (name: string, help: string, value: (f: ReturnType<FollowerRegistry['list']>[number], now: number) => number | Promise<number>) =>
      new Gauge({
        name,
        help,
        labelNames: ['follower'] as const,
        registers: r,
        async collect() {
          this.reset();
          const now = Date.now();
          for (const f of followers.list()) this.set({ follower: String(f.id) }, await value(f, now));
        },
      });
    perFollower('lr_master_follower_applied_seq', 'Highest seq each follower acknowledged', (f) => Number(f.ackedSeq));
    perFollower('lr_master_follower_lag_entries', 'Last seq of the log served minus the follower\'s acknowledged seq', (f) => Number(lagEntries(wal, f.ackedSeq)));
    perFollower(
      'lr_master_follower_lag_seconds',
      'Age of the oldest entry the follower has not acknowledged (this node\'s clock against the entries\' commit times); 0 when caught up',
      async (f, now) => (await lagMs(wal, f.ackedSeq, now)) / 1000,
    );
    perFollower('lr_master_follower_last_ack_timestamp_seconds', 'When each follower last acknowledged (epoch seconds, this node\'s clock); 0 if never', (f) => f.lastAckTimeMs / 1000);
    perFollower(
      'lr_master_follower_slot_lost',
      '1 while a follower\'s replication slot is lost (it fell behind the retention cap; the log no longer waits for it, and it gets a snapshot when it returns only if its next entry was trimmed by then), else 0',
      (f) => (f.slotLost ? 1 : 0),
    );
    perFollower(
      'lr_master_follower_sent_seq',
      'Highest seq sent to each follower on its current (or last) stream; above its applied seq while entries are in flight or unapplied',
      (f) => Number(f.sentSeq),
    );
  }

  /** A follower's labelled counters start at 0: for the slots known at start, and for each accepted subscription. */
  initFollower(id: number): void {
    this.streamedEntries.inc({ follower: String(id) }, 0);
    this.streamedBytes.inc({ follower: String(id) }, 0);
  }
}
