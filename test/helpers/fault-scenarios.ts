import type { FollowerStatus__Output } from '../../src/wire/generated/levelreplicator/v1/FollowerStatus.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS, MASTER_KEEPALIVE_DETECT_MS, type Cluster } from './fault-cluster.js';
import { diskFullScenario } from './disk-full.js';
import { failoverScenario } from './failover-scenario.js';
import { promotionScenario } from './promotion-scenario.js';
import { snapshotScenario } from './snapshot-scenario.js';
import { waitFor } from './processes.js';
import { sleep, type ScenarioCluster, type ScenarioContext, type ScenarioDef } from './scenario-runner.js';

/** How long any one expected reaction (detection, reconnect, catch-up) may take on a slow, shared machine. */
const REACTION_DEADLINE_MS = 45_000;

/** A cluster whose master answers Status: the fault cluster, or one whose master moves. */
interface MasterStatus {
  status(): Promise<StatusResponse__Output>;
}

async function followerStatus(cluster: MasterStatus, id: number): Promise<FollowerStatus__Output | undefined> {
  return (await cluster.status()).followers.find((f) => f.followerId === id);
}

/** Waits (with a deadline) until follower id is connected and has applied at least the master's current last seq. */
export async function waitCaughtUp(cluster: MasterStatus, id: number, what: string): Promise<number> {
  const t0 = Date.now();
  const target = BigInt((await cluster.status()).lastSeq);
  await waitFor(
    async () => {
      const f = await followerStatus(cluster, id);
      return f?.connected && BigInt(f.appliedSeq) >= target;
    },
    `follower ${id} to catch up ${what}`,
    REACTION_DEADLINE_MS,
    50,
  );
  return Date.now() - t0;
}

/** Waits until the master's status shows follower id as not connected; returns how long that took. */
async function waitMasterSeesDisconnected(cluster: Cluster, id: number, sinceMs: number, what: string): Promise<number> {
  await waitFor(async () => (await followerStatus(cluster, id))?.connected === false, `the master to mark follower ${id} disconnected ${what}`, REACTION_DEADLINE_MS, 50);
  return Date.now() - sinceMs;
}

function ids(ctx: ScenarioContext): number[] {
  return [...ctx.cluster.followers.keys()];
}

/** Redis's test: kill the replication links every couple of seconds under a write flood. */
const linkCuts: ScenarioDef = {
  id: '1',
  title: 'cut the follower links every ~2 s under load (some links slowed by delay)',
  async run(ctx) {
    // ~2 s apart in a long run; closer together in a short one so there are several cuts.
    const period = Math.min(2_000, Math.max(600, ctx.durationMs / 8));
    let cutConnections = 0;
    for (let i = 0; ctx.running(); i++) {
      await sleep(ctx.random.between(period / 2, (period * 3) / 2));
      let n = 0;
      for (const s of ctx.cluster.followers.values()) n += s.proxy.cut();
      cutConnections += n;
      // Every other interval the re-established links are also slow (delay both ways).
      const delay = i % 2 === 0 ? ctx.random.between(20, 150) : 0;
      for (const s of ctx.cluster.followers.values()) s.proxy.setDelay(delay);
      ctx.fault(`cut ${n} connections${delay ? `, then ${delay} ms delay` : ''}`);
    }
    if (cutConnections === 0) ctx.problem('the cuts found no connection to cut');
    const reconnects = [...ctx.cluster.followers.values()].map((s) => s.proc!.logs.filter((l) => l.msg?.startsWith('connected to master')).length - 1);
    ctx.note(`reconnections per follower: ${reconnects.join(', ')}`);
    if (reconnects.some((r) => r < 1)) ctx.problem(`a follower never reconnected after a cut: ${reconnects.join(', ')}`);
  },
};

/** SIGKILL a random follower at a random moment (mid-batch, mid-ack), restart it, repeat. */
const followerKills: ScenarioDef = {
  id: '2',
  title: 'SIGKILL a follower at random moments, restart it, repeat',
  async run(ctx) {
    for (let i = 0; ctx.running() || i < 3; i++) {
      await sleep(ctx.random.between(300, 1_500));
      const id = ctx.random.pick(ids(ctx));
      await ctx.cluster.killFollower(id);
      ctx.fault(`SIGKILL follower ${id}`);
      await sleep(ctx.random.between(0, 800));
      await ctx.cluster.startFollower(id);
    }
  },
};

/** SIGKILL the master mid-load (group commits in flight), restart it on the same port, repeat. */
const masterKills: ScenarioDef = {
  id: '3',
  title: 'SIGKILL the master, restart it, repeat',
  async run(ctx) {
    for (let i = 0; ctx.running() || i < 2; i++) {
      // Each life of the master takes writes before it dies: the kill lands mid-load.
      const from = ctx.load.acked.length;
      await waitFor(() => ctx.load.acked.length >= from + 100, 'writes to be acknowledged by the restarted master', REACTION_DEADLINE_MS);
      await sleep(ctx.random.between(200, 1_500));
      const acked = ctx.load.acked.length;
      await ctx.cluster.killMaster();
      ctx.fault(`SIGKILL master after ${acked} acknowledged writes`);
      await sleep(ctx.random.between(0, 500));
      await ctx.cluster.startMaster();
    }
    ctx.note(`master started ${ctx.cluster.masterStarts} times`);
  },
};

/** The follower's heartbeat watchdog gave up on a silent stream (stream-session.ts). */
const WATCHDOG_MSG = `no message from the master for ${HEARTBEAT_TIMEOUT_MS} ms`;
/**
 * Pauses past the heartbeat timeout after which, if the watchdog has not fired once,
 * the scenario fails. It need not fire on every such pause: a follower frozen in the
 * middle of running JavaScript reads the messages the master sent meanwhile (buffered by
 * the kernel) before its overdue timer runs, and they re-arm the watchdog — correctly, the
 * stream was never silent on the wire. Frozen while idle (in epoll_wait) the timer runs
 * first and fires. Under this load about half the pauses fire; 10 misses in a row would
 * mean a watchdog that never fires.
 */
const MAX_WATCHDOG_PAUSES = 10;

/**
 * SIGSTOP a follower past its heartbeat timeout (on SIGCONT its watchdog must notice the
 * silence and it must resubscribe), and every other time until the master has noticed too
 * (HTTP/2 keepalive on a connection whose peer reads nothing) — then SIGCONT. Pauses of the
 * first kind go on past the scenario's duration until the watchdog has been seen to fire.
 */
const followerPauses: ScenarioDef = {
  id: '4',
  title: 'SIGSTOP a follower past the heartbeat timeout, then SIGCONT',
  async run(ctx) {
    let watchdogPauses = 0;
    let watchdogFired = 0;
    // At least one pause of each kind, however short the run.
    for (let i = 0; ; i++) {
      const overtime = !ctx.running() && i >= 2;
      if (overtime && (watchdogFired > 0 || watchdogPauses >= MAX_WATCHDOG_PAUSES)) break;
      const pastHeartbeatOnly = overtime || i % 2 === 0;
      await sleep(ctx.random.between(300, 1_000));
      const id = ctx.random.pick(ids(ctx));
      const proc = ctx.cluster.slot(id).proc!;
      const logFrom = proc.logs.length;
      const t0 = Date.now();
      proc.pause();
      if (pastHeartbeatOnly) {
        await sleep(HEARTBEAT_TIMEOUT_MS + ctx.random.between(500, 1_500));
      } else {
        const ms = await waitMasterSeesDisconnected(ctx.cluster, id, t0, 'while it is stopped');
        ctx.note(`master noticed stopped follower ${id} after ${ms} ms`);
      }
      proc.resume();
      const resumedAt = Date.now();
      ctx.fault(`SIGSTOP follower ${id} for ${resumedAt - t0} ms`);
      const ms = await waitCaughtUp(ctx.cluster, id, 'after SIGCONT');
      ctx.note(`follower ${id} caught up ${ms} ms after SIGCONT`);
      if (!pastHeartbeatOnly) continue;
      watchdogPauses++;
      const fired = proc.logs.slice(logFrom).findIndex((l) => l.msg === WATCHDOG_MSG);
      if (fired < 0) continue;
      watchdogFired++;
      // It noticed the silence: it must also have subscribed again, on a new stream.
      const from = logFrom + fired;
      const connected = await waitFor(
        () => proc.logs.slice(from).find((l) => l.msg?.startsWith('connected to master')),
        `follower ${id} to resubscribe after its heartbeat watchdog fired`,
        REACTION_DEADLINE_MS,
      );
      ctx.note(`follower ${id}: heartbeat watchdog fired on SIGCONT; resubscribed ${Number(connected.time) - resumedAt} ms after SIGCONT`);
    }
    ctx.note(`heartbeat watchdog fired after ${watchdogFired} of ${watchdogPauses} pauses past the heartbeat timeout`);
    if (watchdogFired === 0) {
      ctx.problem(`the follower's heartbeat watchdog never fired ("${WATCHDOG_MSG}") in ${watchdogPauses} pauses past the heartbeat timeout`);
    }
  },
};

/** What a follower logs once when it loses its stream (subscriber.ts). */
const DISCONNECTED_MSG = 'disconnected from master; reconnecting with backoff';
/** Slack over a computed worst-case detection time, for a loaded 2-core CI machine. */
const DETECTION_MARGIN_MS = 5_000;
/**
 * Worst-case detection of a blackholed link, counted from the moment the blackhole starts
 * (after it, not a byte moves either way):
 * - The follower's watchdog is re-armed by every message and fires HEARTBEAT_TIMEOUT_MS
 *   after the last one, which arrived no later than the blackhole: it fires by then +
 *   HEARTBEAT_TIMEOUT_MS. (The master's heartbeat interval, well under the timeout, keeps an
 *   idle stream from firing it without a fault; it only makes it fire no earlier than
 *   HEARTBEAT_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS after the blackhole on an idle stream.)
 * - The master's keepalive drops the connection by then + MASTER_KEEPALIVE_DETECT_MS, and
 *   the stream's end detaches the follower at once.
 */
const FOLLOWER_DETECT_BOUND_MS = HEARTBEAT_TIMEOUT_MS + DETECTION_MARGIN_MS;
const MASTER_DETECT_BOUND_MS = MASTER_KEEPALIVE_DETECT_MS + DETECTION_MARGIN_MS;
if (HEARTBEAT_INTERVAL_MS >= HEARTBEAT_TIMEOUT_MS) throw new Error('the heartbeat interval must be shorter than the follower heartbeat timeout');

/**
 * Blackhole one follower's link: the connection stays open, no FIN, no RST, nothing
 * arrives. The follower must notice the silence by its heartbeat watchdog within
 * FOLLOWER_DETECT_BOUND_MS and the master must mark it disconnected (keepalive) within
 * MASTER_DETECT_BOUND_MS, both counted from the start of the blackhole, while the other
 * follower goes on; after heal the follower reconnects and catches up.
 */
const blackhole: ScenarioDef = {
  id: '5',
  title: 'blackhole a follower link (no RST): both sides notice, the follower reconnects',
  async run(ctx) {
    for (let i = 0; ctx.running(); i++) {
      await sleep(ctx.random.between(300, 1_000));
      const id = ids(ctx)[i % ids(ctx).length];
      const slot = ctx.cluster.slot(id);
      const others = ids(ctx).filter((o) => o !== id);
      const proc = slot.proc!;
      const logFrom = proc.logs.length;
      const before = await ctx.cluster.status();
      const t0 = Date.now();
      slot.proxy.blackhole();
      ctx.fault(`blackhole follower ${id}`);
      // Both sides are watched at once, each timed from t0: the follower by the time of its
      // own log line, the master by when its status first shows the follower disconnected.
      const [noticed, masterMs] = await Promise.all([
        waitFor(
          () => {
            const lines = proc.logs.slice(logFrom);
            const at = lines.findIndex((l) => l.msg === DISCONNECTED_MSG);
            if (at < 0) return undefined;
            return { ms: Number(lines[at].time) - t0, byWatchdog: lines.slice(0, at).some((l) => l.msg === WATCHDOG_MSG), lines: lines.slice(0, at + 1) };
          },
          `follower ${id} to notice the blackhole`,
          REACTION_DEADLINE_MS,
        ),
        waitMasterSeesDisconnected(ctx.cluster, id, t0, 'behind the blackhole'),
      ]);
      ctx.note(
        `blackhole ${i + 1}: follower ${id} noticed after ${noticed.ms} ms (bound ${FOLLOWER_DETECT_BOUND_MS} ms), ` +
          `the master after ${masterMs} ms (bound ${MASTER_DETECT_BOUND_MS} ms)`,
      );
      if (!noticed.byWatchdog) {
        ctx.problem(`follower ${id} lost the blackholed stream, but not by its heartbeat watchdog ("${WATCHDOG_MSG}"): ${noticed.lines.map((l) => l.msg).join(' | ')}`);
      }
      if (noticed.ms > FOLLOWER_DETECT_BOUND_MS) {
        ctx.problem(`follower ${id} noticed the blackhole after ${noticed.ms} ms: heartbeat timeout ${HEARTBEAT_TIMEOUT_MS} ms + ${DETECTION_MARGIN_MS} ms margin exceeded`);
      }
      if (masterMs > MASTER_DETECT_BOUND_MS) {
        ctx.problem(`the master marked follower ${id} disconnected ${masterMs} ms after the blackhole: keepalive ${MASTER_KEEPALIVE_DETECT_MS} ms + ${DETECTION_MARGIN_MS} ms margin exceeded`);
      }
      // The other followers were not held up by the dead link.
      const during = await ctx.cluster.status();
      for (const o of others) {
        const was = BigInt(before.followers.find((f) => f.followerId === o)?.appliedSeq ?? '0');
        const now = during.followers.find((f) => f.followerId === o);
        if (!now?.connected || BigInt(now.appliedSeq) <= was) ctx.problem(`follower ${o} stopped replicating while follower ${id} was blackholed`);
      }
      slot.proxy.heal();
      const ms = await waitCaughtUp(ctx.cluster, id, 'after the blackhole is lifted');
      ctx.note(`follower ${id} caught up ${ms} ms after heal`);
    }
  },
};

export const SCENARIOS: readonly ScenarioDef<ScenarioCluster>[] = [
  linkCuts,
  followerKills,
  masterKills,
  followerPauses,
  blackhole,
  snapshotScenario,
  diskFullScenario,
  promotionScenario,
  failoverScenario,
];
