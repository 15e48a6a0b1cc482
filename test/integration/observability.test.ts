import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { callUnary, masterClient } from '../../src/wire/rpc-client.js';
import { healthCheck, metric, metricNames, reflectionServices, scrapeMetrics } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');
const DOCS = path.resolve(path.dirname(README), 'docs');

/** README.md and every docs/*.md (the metric tables are in docs/operations.md). */
function documentation(): string {
  const docs = fs.readdirSync(DOCS).filter((f) => f.endsWith('.md')).sort();
  return [README, ...docs.map((f) => path.join(DOCS, f))].map((f) => fs.readFileSync(f, 'utf8')).join('\n');
}

/** Metric names listed in the documentation's metric tables, by prefix. */
function documentedMetrics(prefix: string): Set<string> {
  const names = new Set<string>();
  for (const m of documentation().matchAll(/^\| `(lr_[a-z_]+)` \|/gm)) if (m[1].startsWith(prefix)) names.add(m[1]);
  return names;
}

/** What a scrape exports under our prefix (histograms by their base name). */
function exported(samples: Map<string, number>, prefix: string): Set<string> {
  return new Set([...metricNames(samples)].filter((n) => n.startsWith(prefix) && !/_(bucket|sum|count)$/.test(n)));
}

describe('observability: status, metrics, health, reflection; --no-sync acks do not count', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle; // --no-sync: its acks are not durable
  let f2: FollowerHandle; // --metrics-listen off
  const push = (args: string[]) => runTool('push-data', [...args, '--master', master.address]);

  before(async () => {
    master = await startMaster(path.join(root, 'master'));
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--no-sync']);
    f2 = await startFollower(2, path.join(root, 'follower-2'), master.address, ['--metrics-listen', 'off']);
  });
  after(async () => {
    for (const h of [f1, f2, master]) await h?.proc.kill('SIGKILL');
  });

  it('only durable (--sync) followers count for write acknowledgement', async () => {
    const both = await push(['k', 'v1', '--ack-followers', '2', '--ack-timeout-ms', '1500', '--json']);
    assert.equal(both.code, 7, both.stderr);
    const answer = JSON.parse(both.stdout);
    assert.equal(answer.followersAcked, 1, 'follower 1 runs --no-sync and does not count');
    // ... although it did apply the write.
    const read = await runTool('get-data', ['1', 'k', '--data-root', root, '--min-seq', answer.lastSeq]);
    assert.equal(read.stdout, 'v1\n');
    const one = await push(['k', 'v2', '--ack-followers', '1', '--json']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(JSON.parse(one.stdout).ackStatus, 'REPLICATED');
  });

  it('replication-status shows states, durability, bytes sent and the write rate', async () => {
    await waitFor(async () => {
      const r = await runTool('replication-status', ['--master', master.address, '--json']);
      const s = JSON.parse(r.stdout);
      return s.followers.every((f: { appliedSeq: string }) => f.appliedSeq === s.master.lastSeq);
    }, 'both followers to catch up');
    const s = JSON.parse((await runTool('replication-status', ['--master', master.address, '--json'])).stdout);
    assert.equal(s.master.lastSeq, '2');
    assert.ok(s.master.writeRate >= 0);
    assert.equal(s.master.acceptingWrites, true);
    const [a, b] = s.followers;
    assert.deepEqual([a.id, a.state, a.durable, a.lagEntries, a.lagMs], [1, 'streaming', false, '0', 0]);
    assert.deepEqual([b.id, b.state, b.durable], [2, 'streaming', true]);
    assert.ok(a.bytesSent > 0 && a.lastAckTimeMs > 0 && a.readAddress === f1.readAddress);
    const text = (await runTool('replication-status', ['--master', master.address])).stdout;
    // Sent seq beside the applied one, lag time, sizes and times in human units, what the slot holds.
    assert.match(text, /^FOLLOWER\s+STATE\s+APPLIED\s+SENT\s+LAG\s+LAG_TIME\s+LAST_ACK\s+SINCE\s+SENT_BYTES\s+SLOT_ENTRIES\s+SLOT_BYTES\s+SYNC\s+ADDRESS\s+READ_ADDRESS$/m);
    assert.match(text, /^1\s+streaming\s+2\s+2\s+0\s+0\.0s\s+\S+ ago\s+\S+ ago\s+\d+B\s+0\s+0B\s+no\s/m);
    assert.match(text, /^2\s+streaming\s+2\s+2\s+0\s+0\.0s\s+\S+ ago\s+\S+ ago\s+\d+B\s+0\s+0B\s+yes\s/m);
  });

  it('exports every metric the README lists, and lists every metric it exports', async () => {
    // Labelled error counters appear once counted: make one error on each node.
    const client = masterClient(master.address);
    await assert.rejects(
      callUnary((o, cb) => client.Write({ writes: [] }, o, cb), 5_000, { role: 'master', address: master.address }),
      (e) => isReplicatorError(e, ErrorCode.INVALID_ARGUMENT),
    );
    client.close();
    assert.equal((await runTool('push-data', ['k', 'v', '--no-redirect', '--master', f1.readAddress])).code, 5);

    const m = await scrapeMetrics(master.metricsAddress!);
    assert.deepEqual([...exported(m, 'lr_master_')].sort(), [...documentedMetrics('lr_master_')].sort());
    assert.equal(metric(m, 'lr_master_errors_total', { code: 'INVALID_ARGUMENT' }), 1);
    assert.equal(metric(m, 'lr_master_writes_total'), 2);
    assert.equal(metric(m, 'lr_master_followers_connected'), 2);
    assert.equal(metric(m, 'lr_master_followers', { state: 'streaming' }), 2);
    assert.equal(metric(m, 'lr_master_write_requests_total', { result: 'replication_timeout' }), 1);
    assert.equal(metric(m, 'lr_master_write_requests_total', { result: 'replicated' }), 1);
    assert.equal(metric(m, 'lr_master_write_duration_seconds_count', { ack: 'followers' }), 2);
    assert.ok(metric(m, 'lr_master_streamed_bytes_total', { follower: '1' })! > 0);
    assert.ok(metric(m, 'process_cpu_seconds_total') !== undefined, 'standard process metrics');

    const fm = await scrapeMetrics(f1.metricsAddress!);
    assert.deepEqual([...exported(fm, 'lr_follower_')].sort(), [...documentedMetrics('lr_follower_')].sort());
    assert.equal(metric(fm, 'lr_follower_errors_total', { code: 'NOT_MASTER' }), 1);
    assert.ok(metric(fm, 'lr_follower_reads_total', { result: 'found' })! >= 1);
    assert.equal(metric(fm, 'lr_follower_applied_entries_total'), 2);
    assert.equal(metric(fm, 'lr_follower_applied_seq'), 2);
    assert.equal(metric(fm, 'lr_follower_state', { state: 'streaming' }), 1);
    assert.equal(metric(fm, 'lr_follower_connected'), 1);

    // A node without a metrics listener says so nowhere: no address logged, none in endpoint.json.
    assert.equal(f2.metricsAddress, undefined);
    assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'follower-2', 'endpoint.json'), 'utf8')).metricsAddress, undefined);
    const res = await fetch(`http://${master.metricsAddress}/nothing-here`);
    assert.equal(res.status, 404);
  });

  it('the version: lr_build_info on master and followers, and in Status', async () => {
    const version = (JSON.parse(fs.readFileSync(path.resolve(path.dirname(README), 'package.json'), 'utf8')) as { version: string }).version;
    assert.ok(documentedMetrics('lr_build_info').has('lr_build_info'), 'documented in the README');
    for (const address of [master.metricsAddress!, f1.metricsAddress!]) {
      const samples = await scrapeMetrics(address);
      assert.equal(metric(samples, 'lr_build_info', { version, node: process.version }), 1, address);
      assert.equal([...samples.keys()].filter((k) => k.startsWith('lr_build_info')).length, 1, 'one series');
    }
    const s = JSON.parse((await runTool('replication-status', ['--master', master.address, '--json'])).stdout);
    assert.equal(s.master.version, version);
    const text = (await runTool('replication-status', ['--master', master.address])).stdout;
    assert.match(text.split('\n')[0], new RegExp(`^master ${master.address}  version ${version.replace(/\./g, '\\.')}  history `));
  });

  it('serves the standard health service and server reflection on master and followers', async () => {
    for (const [address, isMaster] of [[master.address, true], [f1.readAddress, false], [f2.readAddress, false]] as const) {
      assert.equal(await healthCheck(address), 'SERVING');
      assert.equal(await healthCheck(address, 'levelreplicator.v1.Store'), 'SERVING');
      // A follower refuses every Master call (NOT_MASTER): a load balancer checking that
      // service name must not send it writes.
      assert.equal(await healthCheck(address, 'levelreplicator.v1.Master'), isMaster ? 'SERVING' : 'NOT_SERVING', `Master service health on ${address}`);
      const services = await reflectionServices(address);
      for (const s of ['levelreplicator.v1.Master', 'levelreplicator.v1.Store', 'grpc.health.v1.Health']) {
        assert.ok(services.includes(s), `${address} lists ${s}: ${services.join(', ')}`);
      }
    }
    await assert.rejects(healthCheck(master.address, 'no.such.Service'), /NOT_FOUND|not found/i);
  });
});
