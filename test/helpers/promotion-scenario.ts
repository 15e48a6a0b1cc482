import { runTool } from '../../src/tools/harness/run-tool.js';
import type { LogLine } from '../../src/tools/harness/node-process.js';
import { askEveryStatus, roleOf } from '../../src/tools/master-finder.js';
import { NO_CLIENT_SECURITY } from '../../src/wire/security.js';
import { status } from './cluster.js';
import { waitCaughtUp } from './fault-scenarios.js';
import { waitFor } from './processes.js';
import { PromotionCluster, type PromotionNode } from './promotion-cluster.js';
import { checkRollbacks } from './promotion-oracles.js';
import { sleep, type ScenarioContext, type ScenarioDef } from './scenario-runner.js';

/**
 * Every write waits for one follower's durable apply (--ack-followers 1 on each request):
 * an acknowledged write is then on at least one follower when the master fails, so the
 * follower promote picks (the most advanced) has it, and no acknowledged write may be
 * lost. With async acks a promotion may lose acknowledged writes by design (README,
 * "What is guaranteed"), and the lost-ack oracle would not apply.
 */
const ACK_FOLLOWERS = 1;
const ACK_TIMEOUT_MS = 2_000;
/** The first master's node id; the followers are nodes 1 and 2. */
const FIRST_MASTER = 3;
const FOLLOWERS = 2;
/** Writes each master acknowledges before it fails, so every fault lands mid-load. */
const WRITES_PER_LIFE = 100;
/** Chance that a round freezes the master (SIGSTOP) instead of killing it. */
const STOP_CHANCE = 1 / 3;
/** How long any one expected reaction (positions, promotion, re-pointing, rejoining) may take on a slow, shared machine. */
const REACTION_DEADLINE_MS = 45_000;
/** How often followers' positions are read while waiting for them to stop moving. */
const SETTLE_POLL_MS = 200;
const SNAPSHOT_MSG = 'master is sending a snapshot';
const ROLLED_BACK = /^rolled back (\d+) entr/;

type Ctx = ScenarioContext<PromotionCluster>;
interface Promotion {
  promoted: number;
  address: string;
  epoch: number;
  firstSeq: string;
  appliedSeq: string;
}

/**
 * Followers' applied seqs once they stop moving: the failed master's last entries may
 * still be in their sockets. Compared while they move, a follower could apply more after
 * the comparison and end up ahead of the promoted one (then it rolls those entries back:
 * correct, but not the case a round means to test). Two reads SETTLE_POLL_MS apart that
 * agree end the wait.
 */
async function settledPositions(followers: readonly PromotionNode[]): Promise<Map<number, bigint>> {
  let previous = '';
  return waitFor(
    async () => {
      const now = await Promise.all(followers.map(async (n) => [n.id, BigInt((await status(n.address)).self?.appliedSeq ?? '0')] as const));
      const key = now.map(([id, seq]) => `${id}:${seq}`).join(' ');
      const settled = key === previous;
      previous = key;
      return settled ? new Map(now) : undefined;
    },
    "the followers' positions to settle after the master failed",
    REACTION_DEADLINE_MS,
    SETTLE_POLL_MS,
  );
}

/**
 * Promotes the most advanced follower (ties: a seeded random pick) with replication-admin
 * promote, which compares the positions itself and refuses if another follower is ahead;
 * after such a refusal (a follower moved after all) the positions are read again.
 */
async function promoteMostAdvanced(ctx: Ctx): Promise<{ res: Promotion; positions: Map<number, bigint> }> {
  const { cluster } = ctx;
  for (let attempt = 1; ; attempt++) {
    const positions = await settledPositions(cluster.followers());
    const top = [...positions.values()].reduce((a, b) => (a > b ? a : b));
    const id = ctx.random.pick([...positions].filter(([, seq]) => seq === top).map(([i]) => i));
    const args = ['promote', String(id), '--nodes', cluster.nodeAddresses().join(','), '--json', '--timeout-ms', '30000'];
    const r = await runTool('replication-admin', args, { timeoutMs: 120_000 });
    if (r.code === 0) return { res: JSON.parse(r.stdout) as Promotion, positions };
    if (!/PROMOTION_REFUSED/.test(r.stderr) || attempt >= 3) throw new Error(`replication-admin promote ${id} failed (exit ${r.code}): ${r.stderr.trim()}`);
    ctx.note(`promote ${id} refused, positions read again: ${r.stderr.trim().split('\n').at(-1)}`);
  }
}

function snapshotsIn(lines: readonly LogLine[]): LogLine[] {
  return lines.filter((l) => l.msg === SNAPSHOT_MSG);
}

function rolledBackIn(lines: readonly LogLine[]): number | undefined {
  const l = lines.find((x) => ROLLED_BACK.test(x.msg ?? ''));
  return l ? Number(ROLLED_BACK.exec(l.msg!)![1]) : undefined;
}

/**
 * A follower that joined the new master got a snapshot only where its history does not
 * continue the new master's: it had entries past the fork (they went to a rollback file
 * first), or the new master's log no longer holds its next seq. Returns what it did.
 */
function checkJoin(ctx: Ctx, node: PromotionNode, lines: readonly LogLine[], masterFirstSeq: bigint, position: bigint | undefined): string {
  const snaps = snapshotsIn(lines);
  const rolled = rolledBackIn(lines);
  if (snaps.length === 0) {
    if (rolled !== undefined) ctx.problem(`node ${node.id} rolled back ${rolled} entries but got no snapshot`);
    return 'continued from its applied seq (no snapshot)';
  }
  const reason = String(snaps[0].reason ?? '');
  if (rolled !== undefined && /^diverged at seq/.test(reason)) return `had ${rolled} entries past the fork: rollback file, then a snapshot`;
  if (/^log trimmed/.test(reason) && position !== undefined && position + 1n < masterFirstSeq) return `got a snapshot: the new master's log starts at ${masterFirstSeq} (${reason})`;
  ctx.problem(`node ${node.id} got a snapshot although its history continues the new master's (${reason})`);
  return `snapshot: ${reason}`;
}

/** Exactly one node answers as the master, at the newest epoch; the others follow it. */
async function checkOneMaster(ctx: Ctx): Promise<void> {
  const { cluster } = ctx;
  const answers = await askEveryStatus(cluster.nodeAddresses(), NO_CLIENT_SECURITY, 5_000);
  const masters = answers.filter((a) => a.status && roleOf(a.status) === 'master');
  if (masters.length !== 1 || masters[0].address !== cluster.masterAddress || masters[0].status?.epoch !== cluster.epoch) {
    ctx.problem(`after round at epoch ${cluster.epoch} the masters are ${masters.map((m) => `${m.address} (epoch ${m.status?.epoch})`).join(', ') || 'none'}, expected node ${cluster.masterId} at ${cluster.masterAddress}`);
  }
  for (const a of answers) {
    if (a.address === cluster.masterAddress) continue;
    if (!a.status || roleOf(a.status) !== 'follower' || a.status.self?.epoch !== cluster.epoch) {
      ctx.problem(`${a.address} is not a follower at epoch ${cluster.epoch}: ${a.error?.message ?? `${roleOf(a.status!)} at epoch ${a.status!.self?.epoch ?? a.status!.epoch}`}`);
    }
  }
}

/** One round: the master fails under load, the most advanced follower is promoted, the others re-point, the old master rejoins. */
async function round(ctx: Ctx, i: number, kind: 'kill' | 'stop'): Promise<void> {
  const { cluster, load } = ctx;
  const from = load.acked.length;
  await waitFor(() => load.acked.length >= from + WRITES_PER_LIFE, `writes to be acknowledged by the master of epoch ${cluster.epoch}`, REACTION_DEADLINE_MS);
  await sleep(ctx.random.between(100, 800));
  const old = cluster.master;
  const oldEpoch = cluster.epoch;
  const logFrom = new Map([...cluster.nodes.values()].map((n) => [n.id, n.proc!.logs.length]));
  if (kind === 'stop') old.proc!.pause();
  else await cluster.kill(old.id);
  ctx.fault(`${kind === 'stop' ? 'SIGSTOP' : 'SIGKILL'} the master (node ${old.id}, epoch ${oldEpoch}) after ${load.acked.length} acknowledged writes`);

  const others = cluster.followers();
  const { res, positions } = await promoteMostAdvanced(ctx);
  cluster.promoted(res.promoted, res.epoch);
  if (res.epoch !== oldEpoch + 1) ctx.problem(`round ${i}: the promotion started epoch ${res.epoch}, the newest was ${oldEpoch}`);
  if (BigInt(res.firstSeq) !== BigInt(res.appliedSeq) + 1n) ctx.problem(`round ${i}: epoch ${res.epoch} starts at seq ${res.firstSeq}, the promoted node had applied ${res.appliedSeq}`);
  const top = [...positions.values()].reduce((a, b) => (a > b ? a : b));
  if (BigInt(res.appliedSeq) < top) ctx.problem(`round ${i}: node ${res.promoted} was promoted at seq ${res.appliedSeq}, another follower had applied ${top}`);
  const newMaster = await status(cluster.masterAddress);
  const last = newMaster.epochs.at(-1);
  if (last?.epoch !== res.epoch || last.firstSeq !== res.firstSeq) ctx.problem(`round ${i}: the new master's epoch history ends ${JSON.stringify(last)}, expected epoch ${res.epoch} from ${res.firstSeq}`);
  const masterFirstSeq = BigInt(newMaster.firstSeq);

  // The other followers were told to follow the new master: they continue from their seq.
  const what: string[] = [];
  for (const n of others.filter((o) => o.id !== res.promoted)) {
    await waitCaughtUp(cluster, n.id, `on the new master (node ${res.promoted})`);
    what.push(`node ${n.id} ${checkJoin(ctx, n, n.proc!.logs.slice(logFrom.get(n.id)), masterFirstSeq, positions.get(n.id))}`);
  }

  // The old master comes back: SIGCONT (the notice waiting in its socket deposes it) or a
  // restart as before; either way it rejoins as a follower of the new master.
  const t0 = Date.now();
  let oldLogs: number;
  if (kind === 'stop') {
    oldLogs = logFrom.get(old.id)!;
    old.proc!.resume();
  } else {
    oldLogs = 0;
    await cluster.restart(old.id);
  }
  await waitCaughtUp(cluster, old.id, `after rejoining as a follower of node ${res.promoted}`);
  const how = checkJoin(ctx, old, old.proc!.logs.slice(oldLogs), masterFirstSeq, undefined);
  what.push(`old master node ${old.id} rejoined in ${Date.now() - t0} ms and ${how}`);
  await checkOneMaster(ctx);
  ctx.note(`round ${i}: ${kind === 'stop' ? 'SIGSTOP' : 'SIGKILL'} node ${old.id}; positions ${[...positions].map(([id, s]) => `${id}@${s}`).join(' ')}; promoted node ${res.promoted} (epoch ${res.epoch} from ${res.firstSeq}); ${what.join('; ')}`);
}

/**
 * Failover rounds under load, replayable by seed: the master is SIGKILLed (sometimes
 * SIGSTOPped instead) mid-load; replication-admin promote makes the most advanced
 * follower the master of the next epoch; the other followers must re-point to it and
 * continue without a snapshot wherever their history continues its; the old master comes
 * back (SIGCONT, or a restart as before, master-server --node-id) and must rejoin as a
 * follower, its unreplicated writes in a rollback file. After every round exactly one
 * node is the master. At the end the common oracles run on the final master (no
 * acknowledged write lost, equal digests, followers equal to it), and the rollback files
 * must hold only writes that were never acknowledged (promotion-oracles.ts). Rounds go on
 * past the duration until both kinds of failure were injected.
 */
export const promotionScenario: ScenarioDef<PromotionCluster> = {
  id: '8',
  title: 'SIGKILL or SIGSTOP the master under load, promote the most advanced follower, the old master rejoins; repeat',
  startCluster: () => PromotionCluster.start({ followers: FOLLOWERS, masterId: FIRST_MASTER }),
  load: { ackFollowers: ACK_FOLLOWERS, ackTimeoutMs: ACK_TIMEOUT_MS },
  async run(ctx) {
    const done = { kill: 0, stop: 0 };
    for (let i = 1; ctx.running() || done.kill === 0 || done.stop === 0; i++) {
      // Past the duration only the kind still missing is injected.
      let kind: 'kill' | 'stop' = ctx.random() < STOP_CHANCE ? 'stop' : 'kill';
      if (!ctx.running()) kind = done.kill === 0 ? 'kill' : 'stop';
      await round(ctx, i, kind);
      done[kind]++;
    }
    ctx.note(`${done.kill + done.stop} promotions (${done.kill} after SIGKILL, ${done.stop} after SIGSTOP); final master node ${ctx.cluster.masterId} at epoch ${ctx.cluster.epoch}`);
  },
  async finalCheck(cluster, load, report) {
    // Every failed write must say why (README, error codes); INTERNAL is a bug by definition.
    for (const code of ['INTERNAL', 'UNKNOWN']) {
      const n = load.errors.get(code);
      if (n) report.problem(`${n} writes failed with ${code}, first: ${load.errorSamples.get(code)}`);
    }
    await checkRollbacks(cluster, load, report);
  },
};
