import { Counter, Gauge, Registry } from 'prom-client';

/**
 * Failover metrics (--etcd), in a registry of their own that both roles serve beside theirs,
 * so the counts run on across role changes of the process.
 */
export class FailoverMetrics {
  readonly registry = new Registry();
  readonly elected = new Counter({ name: 'lr_failover_elections_total', help: 'Times this node won the leader election (became the master through etcd)', registers: [this.registry] });
  readonly renewals = new Counter({ name: 'lr_failover_lease_renewals_total', help: 'Leader lease renewals etcd confirmed while this node led', registers: [this.registry] });
  readonly fenced = new Counter({ name: 'lr_failover_fenced_total', help: 'Times this leader fenced itself: its lease could not be renewed before the margin, so it acknowledged nothing until etcd confirmed it', registers: [this.registry] });
  readonly followed = new Counter({ name: 'lr_failover_leader_changes_total', help: 'Times this node turned to a new leader etcd named (followed it, or was deposed by it)', registers: [this.registry] });
  readonly leader = new Gauge({ name: 'lr_failover_is_leader', help: '1 while this node holds the leader lease and may acknowledge writes, else 0', registers: [this.registry] });
  readonly leaseRemaining = new Gauge({ name: 'lr_failover_lease_remaining_seconds', help: 'Seconds before this leader stops acknowledging unless etcd renews its lease (0 when not leading)', registers: [this.registry] });
}
