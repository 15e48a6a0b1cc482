import { waitCaughtUp } from './fault-scenarios.js';
import { waitFor } from './processes.js';
import { sleep, type ScenarioDef } from './scenario-runner.js';
import { readAppliedSeq } from './stores.js';

/** Short retention so a stopped follower falls off the log within a second or two of load. */
const RETAIN_ENTRIES = 1_000;
const SLOT_MAX_LAG_ENTRIES = 4_000;
const REACTION_DEADLINE_MS = 45_000;
/** Rough bytes a pair of the load costs in a snapshot (key, value, framing). */
const BYTES_PER_PAIR = 70;
/** How long a throttled snapshot should take, so a kill lands in the middle of it. */
const THROTTLED_SNAPSHOT_MS = 1_500;

/**
 * Snapshots under faults. A follower is stopped and the load goes on until the master has
 * trimmed the log past it (its replication slot is lost at the retention cap); then it
 * comes back mid-load and must be resynchronised by a snapshot. In turn:
 * 0. it was SIGKILLed, and is restarted;
 * 1. it was SIGKILLed, is restarted behind a throttled link so the snapshot takes a
 *    while, and is SIGKILLed in the middle of it: it must come back with its old data and
 *    old applied seq (never the snapshot's), discard the partial snapshot, and take a
 *    fresh one;
 * 2. it was SIGSTOPped with its stream open (until the master dropped the stream), and
 *    gets SIGCONT: it applies what it had received, then needs the snapshot.
 */
export const snapshotScenario: ScenarioDef = {
  id: '6',
  title: 'trim the log under a stopped follower, restart it mid-load; SIGKILL a follower mid-snapshot',
  cluster: {
    masterArgs: ['--retain-entries', String(RETAIN_ENTRIES), '--slot-max-lag-entries', String(SLOT_MAX_LAG_ENTRIES), '--trim-interval-ms', '200'],
  },
  async run(ctx) {
    const { cluster } = ctx;
    let killedMidSnapshot = 0;
    // At least a plain snapshot and an interrupted one, however short the run.
    for (let i = 0; ctx.running() || i < 2; i++) {
      await sleep(ctx.random.between(200, 1_000));
      const id = ctx.random.pick([...cluster.followers.keys()]);
      const slot = cluster.slot(id);
      const variant = i % 3;
      let appliedBefore: bigint;
      if (variant < 2) {
        await cluster.killFollower(id);
        ctx.fault(`SIGKILL follower ${id}`);
        appliedBefore = await readAppliedSeq(slot.dir); // exact: the process is dead
      } else {
        slot.proc!.pause();
        ctx.fault(`SIGSTOP follower ${id}`);
        // Once the master has dropped the frozen stream (keepalive), the follower holds
        // at most what was sent on it: past that seq, it needs a snapshot.
        const gone = await waitFor(
          async () => (await cluster.status()).followers.find((f) => f.followerId === id && !f.connected),
          `the master to drop stopped follower ${id}'s stream`,
          REACTION_DEADLINE_MS,
          50,
        );
        appliedBefore = BigInt(gone.sentSeq);
      }
      // The load goes on until the log no longer holds the follower's next seq.
      await waitFor(
        async () => BigInt((await cluster.status()).firstSeq) > appliedBefore + 1n,
        `the master to trim its log past follower ${id}'s seq ${appliedBefore}`,
        REACTION_DEADLINE_MS,
        50,
      );
      ctx.fault(`log trimmed past follower ${id} (at seq ${appliedBefore})`);

      if (variant === 2) {
        const from = slot.proc!.logs.length;
        slot.proc!.resume();
        await slot.proc!.waitForLog('master is sending a snapshot', REACTION_DEADLINE_MS, from);
        await slot.proc!.waitForLog('snapshot installed; streaming the log after it', REACTION_DEADLINE_MS, from);
        const ms = await waitCaughtUp(cluster, id, 'after its snapshot');
        ctx.note(`follower ${id} resumed by SIGCONT, resynchronised by snapshot; caught up ${ms} ms after it`);
        continue;
      }

      const interrupt = variant === 1;
      if (interrupt) slot.proxy.setRate(Math.max(50_000, Math.round((ctx.load.acked.length * BYTES_PER_PAIR * 1000) / THROTTLED_SNAPSHOT_MS)));
      await cluster.startFollower(id);
      let proc = slot.proc!;
      await proc.waitForLog('master is sending a snapshot', REACTION_DEADLINE_MS);

      if (interrupt) {
        await sleep(ctx.random.between(0, 500));
        const finished = proc.hasLog('snapshot installed; streaming the log after it');
        await cluster.killFollower(id);
        slot.proxy.setRate(0);
        if (!finished) {
          killedMidSnapshot++;
          ctx.fault(`SIGKILL follower ${id} mid-snapshot`);
        }
        await cluster.startFollower(id);
        proc = slot.proc!;
        // Restarted with the data and position it had before the snapshot began.
        const opened = proc.logs.find((l) => l.msg === 'follower store opened');
        if (!finished && BigInt(String(opened?.appliedSeq)) !== appliedBefore) {
          ctx.problem(`follower ${id} killed mid-snapshot restarted at seq ${opened?.appliedSeq}, not at its seq before the snapshot ${appliedBefore}`);
        }
        if (!finished) await proc.waitForLog('master is sending a snapshot', REACTION_DEADLINE_MS);
      }
      await proc.waitForLog('snapshot installed; streaming the log after it', REACTION_DEADLINE_MS);
      const ms = await waitCaughtUp(cluster, id, 'after its snapshot');
      ctx.note(`follower ${id} ${interrupt ? 'interrupted, then ' : ''}resynchronised by snapshot; caught up ${ms} ms after it`);
    }
    if (killedMidSnapshot === 0) ctx.problem('no SIGKILL landed in the middle of a snapshot');
  },
};
