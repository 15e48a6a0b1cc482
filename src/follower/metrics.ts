import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ErrorCode } from '../common/errors.js';
import { LATENCY_BUCKETS_SECONDS, newMetricsRegistry } from '../common/metrics-server.js';
import type { ReplicaStore } from '../storage/interfaces.js';
import { FOLLOWER_NODE_STATES, isAcceptedState, type FollowerNodeState } from '../common/replication-state.js';

/**
 * What the replication gauges read at scrape time (the subscriber provides it). Declared
 * here so the metrics need nothing of the subscriber but this: the subscriber uses the
 * metrics' counters, and the dependency runs one way only.
 */
export interface ReplicationSource {
  readonly state: FollowerNodeState;
  /** The master's last seq, as last heard. */
  readonly masterLastSeq: bigint;
  /** How far behind the master in time, in ms; 0 when caught up. */
  lagMs(): number;
}

/**
 * A follower's Prometheus metrics (names in the README). Counters are bumped once per
 * applied batch or per event; gauges are read from the applier and the subscriber when
 * scraped. To add a metric, add a field here and document it in the README.
 */
export class FollowerMetrics {
  readonly registry: Registry = newMetricsRegistry();

  readonly appliedEntries = new Counter({ name: 'lr_follower_applied_entries_total', help: 'Log entries applied', registers: [this.registry] });
  readonly appliedBytes = new Counter({ name: 'lr_follower_applied_bytes_total', help: 'Log entry bytes applied', registers: [this.registry] });
  readonly applyDuration = new Histogram({
    name: 'lr_follower_apply_duration_seconds',
    help: 'Time to verify and write one batch of entries with the applied seq (fsync included with --sync)',
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  readonly reconnects = new Counter({
    name: 'lr_follower_reconnects_total',
    help: 'Subscriptions attempted after a failed or ended one',
    registers: [this.registry],
  });
  readonly snapshots = new Counter({ name: 'lr_follower_snapshots_total', help: 'Snapshots the master started sending (a new, trimmed or diverged follower gets one)', registers: [this.registry] });
  readonly errors = new Counter({
    name: 'lr_follower_errors_total',
    help: 'Replication failures (stream refused, lost or invalid) and refused RPCs, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly reads = new Counter({
    name: 'lr_follower_reads_total',
    help: 'Get calls answered, by result (found, not_found, or the error code, e.g. SEQ_NOT_APPLIED)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor() {
    // Every known label value starts at 0, so a rate() or an alert sees the first increment.
    for (const code of Object.values(ErrorCode)) this.errors.inc({ code }, 0);
    for (const result of ['found', 'not_found', ErrorCode.SEQ_NOT_APPLIED]) this.reads.inc({ result }, 0);
  }

  /** Registers the gauges that read the follower's live state. */
  bind(applier: ReplicaStore, subscriber: ReplicationSource): void {
    const r = [this.registry];
    new Gauge({ name: 'lr_follower_applied_seq', help: 'Seq of the newest applied entry', registers: r, collect() { this.set(Number(applier.appliedSeq)); } });
    new Gauge({
      name: 'lr_follower_master_last_seq',
      help: 'The master\'s last seq, as last heard from it',
      registers: r,
      collect() {
        this.set(Number(subscriber.masterLastSeq));
      },
    });
    new Gauge({
      name: 'lr_follower_lag_entries',
      help: 'Master last seq (as last heard) minus applied seq',
      registers: r,
      collect() {
        const lag = subscriber.masterLastSeq - applier.appliedSeq;
        this.set(lag > 0n ? Number(lag) : 0);
      },
    });
    new Gauge({
      name: 'lr_follower_lag_seconds',
      help: 'How far behind the follower is in time (follower clock against master commit times); 0 when caught up',
      registers: r,
      collect() {
        this.set(subscriber.lagMs() / 1000);
      },
    });
    new Gauge({
      name: 'lr_follower_reads_waiting',
      help: 'Reads now waiting for their minimum seq to be applied (read-your-writes)',
      registers: r,
      collect() {
        this.set(applier.progress.waiting);
      },
    });
    new Gauge({
      name: 'lr_follower_connected',
      help: '1 while the follower has an accepted stream from the master (snapshot, catching_up or streaming)',
      registers: r,
      collect() {
        this.set(isAcceptedState(subscriber.state) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lr_follower_state',
      help: 'The follower\'s replication state (1 for the current one)',
      labelNames: ['state'] as const,
      registers: r,
      collect() {
        for (const s of FOLLOWER_NODE_STATES) this.set({ state: s }, subscriber.state === s ? 1 : 0);
      },
    });
  }
}
