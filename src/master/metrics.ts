import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ErrorCode } from '../common/errors.js';
import { LATENCY_BUCKETS_SECONDS, newMetricsRegistry } from '../common/metrics-server.js';
import type { AckWaiters } from './ack-waiters.js';
import { isConnectedState, STREAM_STATES } from '../common/replication-state.js';
import type { FollowerRegistry } from './follower-registry.js';
import { lagEntries, lagMs } from './replication-lag.js';
import type { ReplicationLog } from '../storage/interfaces.js';
import type { WriteGate } from './write-gate.js';

/** What the master's gauges are read from at scrape time. */
export interface MasterMetricsSource {
  wal: ReplicationLog;
  followers: FollowerRegistry;
  gate: WriteGate;
  acks: AckWaiters;
}

export const WRITE_RESULTS = ['committed', 'replicated', 'replication_timeout', 'error'] as const;
export type WriteResult = (typeof WRITE_RESULTS)[number];

/**
 * The master's Prometheus metrics (names in the README). Counters are bumped once per
 * request or per streamed message, never per entry; gauges (positions, lag, follower
 * states) are computed when scraped, so the write path pays nothing for them.
 * To add a metric, add a field here and document it in the README's metrics table.
 */
export class MasterMetrics {
  readonly registry: Registry = newMetricsRegistry();

  readonly writeRequests = new Counter({
    name: 'lr_master_write_requests_total',
    help: 'Write requests answered, by result: committed (async), replicated, replication_timeout (committed, too few follower acks), error',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly writes = new Counter({ name: 'lr_master_writes_total', help: 'Writes (seqs) committed', registers: [this.registry] });
  readonly writeBytes = new Counter({ name: 'lr_master_write_bytes_total', help: 'Key and value bytes committed', registers: [this.registry] });
  readonly writeDuration = new Histogram({
    name: 'lr_master_write_duration_seconds',
    help: 'Write request latency, from receipt to answer, by acknowledgement mode (master: async; followers: waited for follower acks)',
    labelNames: ['ack'] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly streamedEntries = new Counter({
    name: 'lr_master_streamed_entries_total',
    help: 'Log entries sent to followers',
    labelNames: ['follower'] as const,
    registers: [this.registry],
  });
  readonly streamedBytes = new Counter({
    name: 'lr_master_streamed_bytes_total',
    help: 'Log entry bytes sent to followers',
    labelNames: ['follower'] as const,
    registers: [this.registry],
  });
  readonly subscriptions = new Counter({
    name: 'lr_master_subscriptions_total',
    help: 'Follower subscriptions, by result (accepted, refused); every reconnect is one',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly snapshotsSent = new Counter({ name: 'lr_master_snapshots_sent_total', help: 'Store snapshots sent to followers', registers: [this.registry] });
  readonly errors = new Counter({
    name: 'lr_master_errors_total',
    help: 'Errors answered by the master\'s RPCs, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  constructor(source: MasterMetricsSource) {
    const { wal, followers, gate, acks } = source;
    const r = [this.registry];
    // Every known label value starts at 0, so a rate() or an alert sees the first increment
    // (a series that appears at 1 has no increase to show).
    for (const result of WRITE_RESULTS) this.writeRequests.inc({ result }, 0);
    for (const ack of ['master', 'followers']) this.writeDuration.zero({ ack });
    for (const result of ['accepted', 'refused']) this.subscriptions.inc({ result }, 0);
    for (const code of Object.values(ErrorCode)) this.errors.inc({ code }, 0);
    for (const f of followers.slots()) this.initFollower(f.id);
    new Gauge({ name: 'lr_master_last_seq', help: 'Newest committed seq', registers: r, collect() { this.set(Number(wal.lastSeq)); } });
    new Gauge({ name: 'lr_master_first_seq', help: 'Oldest seq still in the log', registers: r, collect() { this.set(Number(wal.firstSeq)); } });
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
      help: 'Followers known since the master started, by state',
      labelNames: ['state'] as const,
      registers: r,
      collect() {
        for (const s of STREAM_STATES) this.set({ state: s }, followers.list().filter((f) => f.state === s).length);
      },
    });
    new Gauge({
      name: 'lr_master_follower_applied_seq',
      help: 'Highest seq each follower acknowledged',
      labelNames: ['follower'] as const,
      registers: r,
      collect() {
        // Reset first: a follower record that went away (a refused subscribe) leaves no stale series.
        this.reset();
        for (const f of followers.list()) this.set({ follower: String(f.id) }, Number(f.ackedSeq));
      },
    });
    new Gauge({
      name: 'lr_master_follower_lag_entries',
      help: 'Master last seq minus the follower\'s acknowledged seq',
      labelNames: ['follower'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const f of followers.list()) this.set({ follower: String(f.id) }, Number(lagEntries(wal, f.ackedSeq)));
      },
    });
    new Gauge({
      name: 'lr_master_follower_lag_seconds',
      help: 'Age of the oldest entry the follower has not acknowledged (master clock); 0 when caught up',
      labelNames: ['follower'] as const,
      registers: r,
      async collect() {
        this.reset();
        const now = Date.now();
        for (const f of followers.list()) this.set({ follower: String(f.id) }, (await lagMs(wal, f.ackedSeq, now)) / 1000);
      },
    });
    new Gauge({
      name: 'lr_master_follower_last_ack_timestamp_seconds',
      help: 'When each follower last acknowledged (epoch seconds, master clock); 0 if never',
      labelNames: ['follower'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const f of followers.list()) this.set({ follower: String(f.id) }, f.lastAckTimeMs / 1000);
      },
    });
    new Gauge({
      name: 'lr_master_follower_slot_lost',
      help: '1 while a follower\'s replication slot is lost (it fell behind the retention cap; the log no longer waits for it, and it gets a snapshot when it returns only if its next entry was trimmed by then), else 0',
      labelNames: ['follower'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const f of followers.list()) this.set({ follower: String(f.id) }, f.slotLost ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lr_master_follower_sent_seq',
      help: 'Highest seq sent to each follower on its current (or last) stream; above its applied seq while entries are in flight or unapplied',
      labelNames: ['follower'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const f of followers.list()) this.set({ follower: String(f.id) }, Number(f.sentSeq));
      },
    });
    new Gauge({
      name: 'lr_master_log_retained_bytes',
      help: 'About how many bytes of log the master retains (LevelDB\'s on-disk estimate; entries still in its write buffer are not counted)',
      registers: r,
      async collect() {
        this.set(await wal.bytesFrom(wal.firstSeq));
      },
    });
    new Gauge({
      name: 'lr_master_log_retained_entries',
      help: 'Entries in the log (last seq - first seq + 1)',
      registers: r,
      collect() {
        this.set(Number(wal.lastSeq - wal.firstSeq + 1n));
      },
    });
    new Gauge({
      name: 'lr_master_good_followers',
      help: 'Followers that count for --min-followers (connected, acknowledged and lagging at most --min-followers-max-lag-ms)',
      registers: r,
      async collect() {
        this.set((await gate.state()).good);
      },
    });
    new Gauge({
      name: 'lr_master_accepting_writes',
      help: '1 while writes are accepted, 0 while --min-followers refuses them',
      registers: r,
      async collect() {
        this.set(gate.options.minFollowers === 0 || (await gate.state()).accepting ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lr_master_writes_waiting_for_followers',
      help: 'Committed write requests now waiting for follower acknowledgements',
      registers: r,
      collect() {
        this.set(acks.waiting);
      },
    });
  }

  /** A follower's labelled counters start at 0: for the slots known at start, and for each accepted subscription. */
  initFollower(id: number): void {
    this.streamedEntries.inc({ follower: String(id) }, 0);
    this.streamedBytes.inc({ follower: String(id) }, 0);
  }
}
