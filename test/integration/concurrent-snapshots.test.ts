import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { callUnary, masterClient } from '../../src/wire/rpc-client.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';
import { digests, readVia, tsv, waitConverged } from '../helpers/cluster.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/** Enough that the three snapshots take a few seconds even on a fast machine: a window long enough to watch. */
const KEYS = 400_000;
const NEW_FOLLOWERS = [2, 3, 4];

/** One Status answer, as the test saw it (its own clock). */
interface Sample {
  t: number;
  lastSeq: bigint;
  /** Follower id -> [snapshotting, applied seq]. */
  followers: Map<number, { snapshotting: boolean; appliedSeq: bigint }>;
}

/**
 * "The master can serve snapshots to several followers at once without blocking writes or
 * the live stream of other followers" (README, Snapshot bootstrap, contract 1).
 *
 * A master with 400,000 keys and one follower streaming the log; three empty followers
 * start together, so the master sends three snapshots at once. Meanwhile one writer
 * writes through the master, one write at a time, recording when each is acknowledged,
 * and the test polls the master's Status (which says, per follower, whether a snapshot is
 * being sent to it, and the seq it applied). A master that served the snapshots one after
 * another would never show the three at once; one that held writes, or the live stream,
 * while snapshotting would show no writes acknowledged, or follower 1's applied seq
 * standing still, while they are sent.
 */
describe('several snapshots at once', () => {
  const root = tempDir();
  const dir = (name: string) => path.join(root, name);
  let master: MasterHandle;
  const followers = new Map<number, FollowerHandle>();
  after(async () => {
    for (const f of followers.values()) await f.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('three followers are snapshotted at once while writes are acknowledged and a live follower keeps applying them', { timeout: 300_000 }, async (t) => {
    master = await startMaster(dir('master'));
    followers.set(1, await startFollower(1, dir('follower-1'), master.address));
    const load = await runTool('push-data', ['--stdin', '--concurrency', '2', '--master', master.address], {
      input: tsv(KEYS, (i) => `bulk-${String(i).padStart(6, '0')}`, (i) => `value-${i}-${'x'.repeat(60)}`),
      timeoutMs: 240_000,
    });
    assert.equal(load.code, 0, load.stderr);
    await waitConverged(master.address, [1], 180_000);

    const client = masterClient(master.address);
    const peer = { role: 'master' as const, address: master.address };
    let stop = false;

    // The writer: one write at a time; each acknowledgement with its seq and when it came.
    const acks: { seq: bigint; t: number }[] = [];
    const writer = (async () => {
      for (let n = 0; !stop; n++) {
        const res = await callUnary<WriteResponse__Output>(
          (o, cb) => client.Write({ writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from(`live-${n}`), value: Buffer.from(`v${n}`) }] }] }, o, cb),
          10_000,
          peer,
        );
        acks.push({ seq: BigInt(res.firstSeq), t: Date.now() });
      }
    })();
    // The poller: the master's view of every follower, every 20 ms.
    const samples: Sample[] = [];
    const poller = (async () => {
      while (!stop) {
        const s = await callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), 10_000, peer);
        samples.push({
          t: Date.now(),
          lastSeq: BigInt(s.lastSeq),
          followers: new Map(s.followers.map((f) => [f.followerId, { snapshotting: f.snapshotting, appliedSeq: BigInt(f.appliedSeq) }])),
        });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    try {
      await waitFor(() => acks.length >= 20, '20 acknowledged writes', 60_000, 10);
      const started = await Promise.all(NEW_FOLLOWERS.map((id) => startFollower(id, dir(`follower-${id}`), master.address)));
      NEW_FOLLOWERS.forEach((id, i) => followers.set(id, started[i]));
      for (const id of NEW_FOLLOWERS) {
        const line = await followers.get(id)!.proc.waitForLog('master is sending a snapshot', 60_000);
        assert.match(String(line.reason), /new follower/);
      }
      for (const id of NEW_FOLLOWERS) await followers.get(id)!.proc.waitForLog('snapshot installed; streaming the log after it', 180_000);
      // A little more writing after the last install, then stop.
      const n = acks.length;
      await waitFor(() => acks.length >= n + 20, '20 more acknowledged writes', 60_000, 10);
    } finally {
      stop = true;
      await Promise.allSettled([writer, poller]);
    }
    await writer;
    await poller;
    client.close();

    // The master's own log lines: when each snapshot began and when it was all sent.
    const logTime = (msg: string, id: number) => {
      const l = master.proc.logs.find((x) => x.msg === msg && x.followerId === id);
      assert.ok(l, `master logged "${msg}" for follower ${id}`);
      return Number(l.time);
    };
    const begins = NEW_FOLLOWERS.map((id) => logTime('sending a snapshot', id));
    const ends = NEW_FOLLOWERS.map((id) => logTime('snapshot sent; streaming the log after it', id));
    const firstBegin = Math.min(...begins);
    const lastBegin = Math.max(...begins);
    const firstEnd = Math.min(...ends);
    const lastEnd = Math.max(...ends);

    // Concurrent: every snapshot began before any finished, and the master's status showed
    // all three being sent at the same moment.
    assert.ok(lastBegin < firstEnd, `the three snapshots overlap: began ${begins.map((b) => b - firstBegin)} ms, ended ${ends.map((e) => e - firstBegin)} ms`);
    const allThree = samples.filter((s) => NEW_FOLLOWERS.every((id) => s.followers.get(id)?.snapshotting));
    assert.ok(allThree.length >= 3, `status showed the three snapshots in progress together in ${allThree.length} samples`);

    // Writes kept being acknowledged while snapshots were being sent, and while all three were.
    const ackedBetween = (from: number, to: number) => acks.filter((a) => a.t > from && a.t < to).length;
    const duringAny = ackedBetween(firstBegin, lastEnd);
    const duringAll = ackedBetween(lastBegin, firstEnd);
    let longestGap = 0;
    for (let i = 1; i < acks.length; i++) if (acks[i].t > firstBegin && acks[i - 1].t < lastEnd) longestGap = Math.max(longestGap, acks[i].t - acks[i - 1].t);
    const summary =
      `snapshots sent over ${lastEnd - firstBegin} ms (all three at once for ${firstEnd - lastBegin} ms); ` +
      `${duringAny} writes acknowledged meanwhile, ${duringAll} while all three were sent; longest wait between acknowledgements ${longestGap} ms; ` +
      `${allThree.length} status samples with all three in progress`;
    const before = acks.filter((a) => a.t < firstBegin);
    const baseline = before.length > 1 ? ((before.length - 1) * 1000) / (before[before.length - 1].t - before[0].t) : 0;
    t.diagnostic(`${summary}; before the snapshots: ${before.length} writes at ${baseline.toFixed(0)}/s`);
    assert.ok(duringAny >= 15, `writes acknowledged during the snapshots: ${summary}`);
    assert.ok(duringAll >= 10, `writes acknowledged while all three snapshots were sent: ${summary}`);
    assert.ok(longestGap < (lastEnd - firstBegin) / 3, `no write waited out a large part of the snapshots: ${summary}`);

    // The live follower kept applying the new writes while all three were being sent: its
    // applied seq (as the master saw it) moved on between the first and the last status
    // sample that showed the three in progress, and so did the master's last seq.
    const a = allThree[0];
    const b = allThree[allThree.length - 1];
    const applied = (s: Sample) => s.followers.get(1)!.appliedSeq;
    assert.ok(b.lastSeq > a.lastSeq, `the master kept committing while the three snapshots were sent (${a.lastSeq} -> ${b.lastSeq})`);
    assert.ok(applied(b) > applied(a), `follower 1 kept applying while the three snapshots were sent (${applied(a)} -> ${applied(b)})`);
    // ... and kept up: by the last of those samples it had applied everything the master had
    // committed at the first one.
    assert.ok(applied(b) >= a.lastSeq, `follower 1 kept up while the three snapshots were sent: it applied ${applied(b)}, the master was at ${a.lastSeq} ${b.t - a.t} ms before`);
    const liveLag = allThree.map((s) => Number(s.lastSeq - applied(s)));
    t.diagnostic(`follower 1 applied ${applied(a)} -> ${applied(b)} while the three snapshots were sent; its lag in entries in those samples: max ${Math.max(...liveLag)}`);

    // Everyone converges to the same data: the master, the live follower, and the three snapshotted ones.
    await waitConverged(master.address, [1, ...NEW_FOLLOWERS], 120_000);
    const last = `live-${acks.length - 1}`;
    for (const id of [1, ...NEW_FOLLOWERS]) assert.equal((await readVia(followers.get(id)!.readAddress, last)).value, `v${acks.length - 1}`);
    const rows = await digests(root, ['master', '1', ...NEW_FOLLOWERS.map(String)]);
    assert.equal(rows.length, 5);
    assert.ok(rows.every((r) => r.digest === rows[0].digest && r.seq === rows[0].seq), JSON.stringify(rows));
    assert.equal(Number(rows[0].keys), KEYS + acks.length);
  });
});
