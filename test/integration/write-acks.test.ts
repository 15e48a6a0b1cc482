import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { callUnary, masterClient } from '../../src/wire/rpc-client.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import { tsv } from '../helpers/cluster.js';
import { metric, scrapeMetrics } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

async function status(address: string): Promise<StatusResponse__Output> {
  const client = masterClient(address);
  try {
    return await callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), 5_000, { role: 'master', address });
  } finally {
    client.close();
  }
}

/**
 * One master that refuses writes unless at least one follower is good (lag and last ack
 * within 1500 ms), and two followers. Followers are paused with SIGSTOP to make them lag.
 */
describe('write acknowledgement, min-followers, read-your-writes, read-only followers', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  let f2: FollowerHandle;
  const push = (args: string[]) => runTool('push-data', [...args, '--master', master.address]);
  const get = (id: string, key: string, extra: string[] = []) => runTool('get-data', [id, key, '--data-root', root, ...extra]);
  const follower = async (id: number) => (await status(master.address)).followers.find((f) => f.followerId === id);
  const caughtUp = async (id: number) => {
    const s = await status(master.address);
    const f = s.followers.find((x) => x.followerId === id);
    return f?.state === 'STREAMING' && f.appliedSeq === s.lastSeq && f.lagEntries === '0' && f.lagMs === '0';
  };

  before(async () => {
    master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--min-followers', '1', '--min-followers-max-lag-ms', '1500']);
  });
  after(async () => {
    for (const h of [f1, f2, master]) await h?.proc.kill('SIGKILL');
  });

  it('refuses writes while no follower is good, and takes them once one is', async () => {
    const refused = await push(['k0', 'v0']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /refusing writes: 0 followers are connected with lag <= 1500 ms, --min-followers requires 1 .*nothing was written \[NOT_ENOUGH_FOLLOWERS\]/);
    assert.equal((await status(master.address)).lastSeq, '0', 'a refused write writes nothing');

    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    f2 = await startFollower(2, path.join(root, 'follower-2'), master.address);
    const ok = await waitFor(async () => {
      const r = await push(['k0', 'v0']);
      return r.code === 0 ? r : undefined;
    }, 'writes to be accepted once followers are connected');
    assert.equal(ok.stdout, '1\n');
    const s = await status(master.address);
    assert.equal(s.acceptingWrites, true);
    assert.equal(s.minFollowers, 1);
  });

  it('a follower refuses writes, naming the master', async () => {
    const res = await runTool('push-data', ['k', 'v', '--no-redirect', '--master', f1.readAddress]);
    assert.equal(res.code, 5, res.stderr);
    assert.match(res.stderr, new RegExp(`follower 1 is read-only and cannot take writes; the master is at ${master.address} \\[NOT_MASTER\\]`));
    // Status is the one Master call a follower answers: with its own view, naming its master.
    const st = await runTool('replication-status', ['--master', f2.readAddress]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`^follower 2 ${f2.readAddress}  state \\S+ .* master ${master.address}$`, 'm'));
    assert.equal((await get('1', 'k')).code, 1, 'nothing was written on the follower');
  });

  it('read-your-writes: a read with --min-seq waits for the follower to apply that seq', async () => {
    await waitFor(() => caughtUp(1), 'follower 1 to catch up');
    const next = BigInt((await status(master.address)).lastSeq) + 1n;
    let done = false;
    const read = get('1', 'ryw', ['--min-seq', String(next), '--timeout-ms', '30000', '--seq']).finally(() => (done = true));
    // The read is parked on the follower (no such seq yet) until the write below lands.
    await waitFor(async () => metric(await scrapeMetrics(f1.metricsAddress!), 'lr_follower_reads_waiting') === 1, 'the read to wait on follower 1');
    assert.equal(done, false);
    const w = await push(['ryw', 'mine']);
    assert.equal(w.stdout, `${next}\n`, 'push-data prints the seq to pass to --min-seq');
    const r = await read;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'mine\n');
    assert.match(r.stderr, /via=rpc/);

    const tooFar = await get('1', 'ryw', ['--min-seq', String(next + 1000n), '--timeout-ms', '1000']);
    assert.equal(tooFar.code, 3);
    assert.match(tooFar.stderr, new RegExp(`follower 1 has applied up to seq ${next}, not yet seq ${next + 1000n} .*\\[SEQ_NOT_APPLIED\\]`));
  });

  it('waiting for 2 followers while one is paused times out reporting 1 ack; after SIGCONT it succeeds', { timeout: 120_000 }, async () => {
    await waitFor(async () => (await caughtUp(1)) && (await caughtUp(2)), 'both followers to catch up');
    f2.proc.signal('SIGSTOP');
    try {
      let slowDone = false;
      const slowRun = push(['paused', 'v1', '--ack-followers', '2', '--ack-timeout-ms', '5000', '--json']).finally(() => (slowDone = true));
      // While that write waits for follower 2, other writes keep committing.
      await waitFor(async () => metric(await scrapeMetrics(master.metricsAddress!), 'lr_master_writes_waiting_for_followers') === 1, 'the write to wait for followers');
      const meanwhile = await push(['meanwhile', 'x']);
      assert.equal(meanwhile.code, 0, meanwhile.stderr);
      assert.equal(slowDone, false, 'a write waiting for followers does not hold up other writes');
      const slow = await slowRun;
      assert.equal(slow.code, 7, slow.stderr);
      const answer = JSON.parse(slow.stdout);
      assert.equal(answer.ackStatus, 'REPLICATION_TIMEOUT');
      assert.equal(answer.followersRequested, 2);
      assert.equal(answer.followersAcked, 1);
      assert.match(slow.stderr, /seq \d+ is committed on the master, but only 1 of 2 followers acknowledged it before the timeout \[REPLICATION_TIMEOUT\]/);
      const seq = BigInt(answer.lastSeq);
      assert.equal((await get('1', 'paused', ['--min-seq', String(seq)])).stdout, 'v1\n', 'the write stays committed (and replicated to follower 1)');

      // Status and metrics show follower 2's lag while it is paused.
      const f = (await follower(2))!;
      assert.ok(BigInt(f.lagEntries) >= 1n, `lag entries ${f.lagEntries}`);
      assert.ok(Number(f.lagMs) >= 1000, `lag ms ${f.lagMs}`);
      const m = await scrapeMetrics(master.metricsAddress!);
      assert.ok(metric(m, 'lr_master_follower_lag_entries', { follower: '2' })! >= 1);
      assert.ok(metric(m, 'lr_master_follower_lag_seconds', { follower: '2' })! >= 1);
      assert.equal(metric(m, 'lr_master_follower_lag_entries', { follower: '1' }), 0);
      assert.ok(metric(m, 'lr_master_write_requests_total', { result: 'replication_timeout' })! >= 1);

      // A read-your-writes read on the paused follower waits, and answers once it has caught up.
      let done = false;
      const read = get('2', 'paused', ['--min-seq', String(seq), '--timeout-ms', '60000']).finally(() => (done = true));
      const text = await runTool('replication-status', ['--master', master.address]);
      assert.match(text.stdout, /^2\s+(streaming|disconnected)\s+\d+\s+[1-9]\d*\s+[1-9]\d*\s/m, text.stdout);
      assert.equal(done, false, 'the read cannot finish while follower 2 is paused');
      f2.proc.signal('SIGCONT');
      const r = await read;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'v1\n');
    } finally {
      f2.proc.signal('SIGCONT');
    }

    const fast = await push(['resumed', 'v2', '--ack-followers', '2', '--ack-timeout-ms', '30000', '--json']);
    assert.equal(fast.code, 0, fast.stderr);
    assert.deepEqual(
      (({ ackStatus, followersRequested, followersAcked }) => ({ ackStatus, followersRequested, followersAcked }))(JSON.parse(fast.stdout)),
      { ackStatus: 'REPLICATED', followersRequested: 2, followersAcked: 2 },
    );

    // Caught up: zero lag in status and in metrics.
    await waitFor(() => caughtUp(2), 'follower 2 to show zero lag in status');
    await waitFor(async () => {
      const m = await scrapeMetrics(master.metricsAddress!);
      return metric(m, 'lr_master_follower_lag_entries', { follower: '2' }) === 0 && metric(m, 'lr_master_follower_lag_seconds', { follower: '2' }) === 0;
    }, 'follower 2 to show zero lag in metrics');
    const fm = await scrapeMetrics(f2.metricsAddress!);
    assert.equal(metric(fm, 'lr_follower_lag_entries'), 0);
  });

  it('refuses writes while both followers are paused, and recovers when they resume', { timeout: 120_000 }, async () => {
    f1.proc.signal('SIGSTOP');
    f2.proc.signal('SIGSTOP');
    try {
      const refused = await waitFor(async () => {
        const r = await push(['gate', 'x']);
        return r.code === 3 ? r : undefined;
      }, 'writes to be refused');
      assert.match(refused.stderr, /--min-followers requires 1 \(follower 1: .*; follower 2: .*\).*\[NOT_ENOUGH_FOLLOWERS\]/);
      const s = await status(master.address);
      assert.equal(s.acceptingWrites, false);
      assert.equal(s.goodFollowers, 0);
    } finally {
      f1.proc.signal('SIGCONT');
      f2.proc.signal('SIGCONT');
    }
    await waitFor(async () => (await push(['gate', 'y'])).code === 0, 'writes to be accepted again');
    await waitFor(async () => (await get('2', 'gate')).stdout === 'y\n', 'the write to reach follower 2');
  });
});

/**
 * A master whose default policy (--ack-followers 2, --ack-timeout-ms 7000) waits for both
 * followers longer than push-data's own --timeout-ms (5000): a plain push-data, without
 * ack flags, gets that policy; its wait is the master's timeout or push-data's deadline,
 * whichever ends first (push-data cannot know the master's default).
 */
describe("the master's default acknowledgement policy", () => {
  const MASTER_ACK_TIMEOUT_MS = 7_000;
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  let f2: FollowerHandle;
  const push = (args: string[], input?: string) => runTool('push-data', [...args, '--master', master.address], { input });
  const get = (id: string, key: string, extra: string[] = []) => runTool('get-data', [id, key, '--data-root', root, ...extra]);
  const lastSeq = async () => BigInt((await status(master.address)).lastSeq);
  const caughtUp = async (id: number) => {
    const s = await status(master.address);
    const f = s.followers.find((x) => x.followerId === id);
    return f?.state === 'STREAMING' && f.appliedSeq === s.lastSeq;
  };
  const bothCaughtUp = () => waitFor(async () => (await caughtUp(1)) && (await caughtUp(2)), 'both followers to stream and catch up');
  const ackFields = (stdout: string) =>
    (({ ackStatus, followersRequested, followersAcked }) => ({ ackStatus, followersRequested, followersAcked }))(JSON.parse(stdout));

  before(async () => {
    master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--ack-followers', '2', '--ack-timeout-ms', String(MASTER_ACK_TIMEOUT_MS)]);
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    f2 = await startFollower(2, path.join(root, 'follower-2'), master.address);
  });
  after(async () => {
    for (const h of [f1, f2, master]) await h?.proc.kill('SIGKILL');
  });

  it('a plain push waits for the followers the master asks for', async () => {
    const s = await status(master.address);
    assert.deepEqual([s.defaultAckFollowers, s.defaultAckTimeoutMs], [2, MASTER_ACK_TIMEOUT_MS]);
    await bothCaughtUp();
    const res = await push(['first', 'v', '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(ackFields(res.stdout), { ackStatus: 'REPLICATED', followersRequested: 2, followersAcked: 2 });
  });

  it('with one of two followers SIGSTOPped a plain push times out (exit 7, with the count) at the master\'s timeout or its own deadline, whichever is first; after SIGCONT the next plain push succeeds', { timeout: 120_000 }, async () => {
    await bothCaughtUp();
    f2.proc.pause();
    try {
      // A deadline longer than the master's timeout: the master's whole 7 s wait.
      let started = Date.now();
      const slow = await push(['paused', 'v1', '--timeout-ms', '15000']);
      let elapsed = Date.now() - started;
      assert.equal(slow.code, 7, slow.stderr);
      const seq = BigInt(slow.stdout.trim());
      assert.equal(seq, await lastSeq(), 'the seq is printed: the write is committed');
      assert.match(slow.stderr, new RegExp(`seq ${seq} is committed on the master, but only 1 of 2 followers acknowledged it before the timeout \\[REPLICATION_TIMEOUT\\]`));
      assert.ok(elapsed >= MASTER_ACK_TIMEOUT_MS, `answered after ${elapsed} ms, before the master's ${MASTER_ACK_TIMEOUT_MS} ms timeout`);
      assert.equal((await get('1', 'paused', ['--min-seq', String(seq)])).stdout, 'v1\n', 'the write stays committed and reaches follower 1');

      // The default 5 s deadline ends the wait first: still an answer with the count, not a bare DEADLINE_EXCEEDED.
      started = Date.now();
      const bounded = await push(['paused-2', 'v1']);
      elapsed = Date.now() - started;
      assert.equal(bounded.code, 7, bounded.stderr);
      assert.match(bounded.stderr, /only 1 of 2 followers acknowledged it before the timeout \[REPLICATION_TIMEOUT\]/);
      assert.ok(elapsed < MASTER_ACK_TIMEOUT_MS, `a plain push took ${elapsed} ms: its own 5 s deadline must bound it`);
    } finally {
      f2.proc.resume();
    }
    await waitFor(() => caughtUp(2), 'follower 2 to catch up after SIGCONT');
    const next = await push(['resumed', 'v2', '--json']);
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(ackFields(next.stdout), { ackStatus: 'REPLICATED', followersRequested: 2, followersAcked: 2 });
  });

  it('a bulk load with an ack policy stops at the first batch not acknowledged in time (exit 7); nothing after it is sent', { timeout: 120_000 }, async () => {
    await bothCaughtUp();
    const from = await lastSeq();
    const lines = tsv(50, (i) => `bulk-${i}`, (i) => `b${i}`);
    f2.proc.pause();
    try {
      const res = await push(['--stdin', '--batch-size', '10', '--ack-followers', '2', '--ack-timeout-ms', '1000'], lines);
      assert.equal(res.code, 7, res.stderr);
      const [first, last] = [from + 1n, from + 10n];
      assert.match(
        res.stderr,
        new RegExp(`the batch of seqs ${first}\\.\\.${last} is committed on the master, but only 1 of 2 followers acknowledged it before the timeout \\(after committing 10 pairs, seqs ${first}\\.\\.${last}\\) \\[REPLICATION_TIMEOUT\\]`),
      );
      assert.equal(res.stdout, '');
      assert.equal(await lastSeq(), last, 'only the first batch was sent');
      assert.equal((await get('1', 'bulk-9', ['--min-seq', String(last)])).stdout, 'b9\n', 'the late batch stays committed');
      assert.equal((await get('1', 'bulk-10')).code, 1, 'the batch after it was never written');
    } finally {
      f2.proc.resume();
    }
    // With both followers back, a plain bulk load (the master's default policy: each batch
    // waits for both) loads everything.
    await waitFor(() => caughtUp(2), 'follower 2 to catch up after SIGCONT');
    const rest = await push(['--stdin', '--batch-size', '10'], lines);
    assert.equal(rest.code, 0, rest.stderr);
    assert.match(rest.stdout, new RegExp(`^loaded 50 pairs, seqs ${from + 11n}\\.\\.${from + 60n}, in `));
    assert.equal((await get('2', 'bulk-49', ['--min-seq', String(from + 60n)])).stdout, 'b49\n');
  });
});
