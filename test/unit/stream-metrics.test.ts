import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../src/common/errors.js';
import { FollowerMetrics } from '../../src/follower/metrics.js';
import { AckWaiters } from '../../src/master/ack-waiters.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { MasterMetrics } from '../../src/master/metrics.js';
import { StreamMetrics } from '../../src/master/stream-metrics.js';
import { WriteGate } from '../../src/master/write-gate.js';
import type { ReplicationLog } from '../../src/storage/interfaces.js';

const wal = { lastSeq: 0n, firstSeq: 1n, bytesFrom: async () => 0 } as unknown as ReplicationLog;

/** Metric names in a registry's exposition (histograms by their base name). */
async function names(text: Promise<string>): Promise<string[]> {
  return [...new Set((await text).split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]))].sort();
}

const STREAM_METRICS = [
  'lr_master_errors_total',
  'lr_master_follower_applied_seq',
  'lr_master_follower_lag_entries',
  'lr_master_follower_lag_seconds',
  'lr_master_follower_last_ack_timestamp_seconds',
  'lr_master_follower_sent_seq',
  'lr_master_follower_slot_lost',
  'lr_master_followers',
  'lr_master_followers_connected',
  'lr_master_snapshots_sent_total',
  'lr_master_streamed_bytes_total',
  'lr_master_streamed_entries_total',
  'lr_master_subscriptions_total',
];

describe('stream metrics: the master\'s follower metrics, in a follower\'s registry too', () => {
  it('a follower serving chained followers exports them beside its own, under the master\'s names', async () => {
    const follower = new FollowerMetrics();
    const registry = FollowerRegistry.fromSlots([{ followerId: 3, appliedSeq: 7n, lost: false }]);
    new StreamMetrics(follower.registry, { wal, followers: registry });
    const all = await names(follower.registry.metrics());
    assert.deepEqual(all.filter((n) => n.startsWith('lr_master_')), STREAM_METRICS);
    assert.ok(all.includes('lr_follower_applied_entries_total'), 'its own metrics stay');
    const text = await follower.registry.metrics();
    // Labelled counters start at 0: every result and code, and each downstream follower with a slot.
    for (const r of ['accepted', 'refused']) assert.match(text, new RegExp(`^lr_master_subscriptions_total\\{result="${r}"\\} 0$`, 'm'));
    for (const code of Object.values(ErrorCode)) assert.match(text, new RegExp(`^lr_master_errors_total\\{code="${code}"\\} 0$`, 'm'));
    assert.match(text, /^lr_master_streamed_entries_total\{follower="3"\} 0$/m);
    assert.match(text, /^lr_master_follower_applied_seq\{follower="3"\} 7$/m);
  });

  it('the master exports the same ones, plus its writes and its log', async () => {
    const registry = FollowerRegistry.fromSlots([]);
    const m = new MasterMetrics({ wal, followers: registry, gate: new WriteGate({ minFollowers: 0, maxLagMs: 1000 }, registry, wal), acks: new AckWaiters(registry) });
    const all = await names(m.registry.metrics());
    for (const n of STREAM_METRICS) assert.ok(all.includes(n), n);
    assert.deepEqual(
      all.filter((n) => n.startsWith('lr_master_') && !STREAM_METRICS.includes(n)),
      [
        'lr_master_accepting_writes',
        'lr_master_first_seq',
        'lr_master_good_followers',
        'lr_master_last_seq',
        'lr_master_log_retained_bytes',
        'lr_master_log_retained_entries',
        'lr_master_write_bytes_total',
        'lr_master_write_duration_seconds',
        'lr_master_write_requests_total',
        'lr_master_writes_total',
        'lr_master_writes_waiting_for_followers',
      ],
    );
  });
});
