import { Counter, Gauge, Histogram } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS, newMetricsRegistry } from '../common/metrics-server.js';
import type { AckWaiters } from './ack-waiters.js';
import { StreamMetrics, type StreamMetricsSource } from './stream-metrics.js';
import type { WriteGate } from './write-gate.js';

/** What the master's gauges are read from at scrape time. */
export interface MasterMetricsSource extends StreamMetricsSource {
  gate: WriteGate;
  acks: AckWaiters;
}

export const WRITE_RESULTS = ['committed', 'replicated', 'replication_timeout', 'error'] as const;
export type WriteResult = (typeof WRITE_RESULTS)[number];

/**
 * The master's Prometheus metrics (names in docs/operations.md): its writes and its log
 * here, its followers and their streams in StreamMetrics. Counters are bumped once per
 * request or per streamed message, never per entry; gauges (positions, lag, follower
 * states) are computed when scraped, so the write path pays nothing for them.
 * To add a metric, add a field here and document it in the metrics table.
 */
export class MasterMetrics extends StreamMetrics {
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

  constructor(source: MasterMetricsSource) {
    // The followers' and their streams' metrics (stream-metrics.ts), shared with followers that serve chained followers.
    super(newMetricsRegistry(), source);
    const { wal, gate, acks } = source;
    const r = [this.registry];
    // Every known label value starts at 0, so a rate() or an alert sees the first increment.
    for (const result of WRITE_RESULTS) this.writeRequests.inc({ result }, 0);
    for (const ack of ['master', 'followers']) this.writeDuration.zero({ ack });
    new Gauge({ name: 'lr_master_last_seq', help: 'Newest committed seq', registers: r, collect() { this.set(Number(wal.lastSeq)); } });
    new Gauge({ name: 'lr_master_first_seq', help: 'Oldest seq still in the log', registers: r, collect() { this.set(Number(wal.firstSeq)); } });
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
}
