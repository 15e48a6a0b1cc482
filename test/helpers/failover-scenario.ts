import { status } from './cluster.js';
import { checkAckEpochs } from './ack-epoch-oracles.js';
import { FailoverCluster } from './failover-cluster.js';
import { waitCaughtUp } from './fault-scenarios.js';
import type { AckedWrite } from './load.js';
import { waitFor } from './processes.js';
import { checkRollbacks } from './promotion-oracles.js';
import { sleep, type ScenarioContext, type ScenarioDef } from './scenario-runner.js';
import { roleOf } from '../../src/tools/master-finder.js';

/** The leader lease's TTL (--lease-ttl-s): short, so rounds are quick; the fencing margin is then 1 s. */
const TTL_S = 2;
const TTL_MS = TTL_S * 1000;
/**
 * Every node runs with --ack-followers 1 and every write asks for one follower's durable
 * apply: an acknowledged write is then on a member of the sync set, and failover may lose
 * none (README, "Automatic failover", what is guaranteed).
 */
const ACK_FOLLOWERS = 1;
const ACK_TIMEOUT_MS = 2_000;
const FOLLOWERS = 2;
/** Writes acknowledged before each fault, so every fault lands mid-load. */
const WRITES_PER_ROUND = 100;
/** How long any one expected reaction (election, rejoin, catch-up) may take on a slow, shared machine. */
const REACTION_DEADLINE_MS = 45_000;

type Kind = 'kill-leader' | 'stop-leader' | 'kill-follower' | 'kill-etcd';
/** Chances of each kind of round; past the duration, the kinds not yet injected come in this order. */
const KINDS: readonly [Kind, number][] = [
  ['kill-etcd', 0.15],
  ['kill-leader', 0.4],
  ['stop-leader', 0.25],
  ['kill-follower', 0.2],
];

type Ctx = ScenarioContext<FailoverCluster>;
interface State {
  done: Record<Kind, number>;
  /** The etcd member killed and not yet restarted. */
  etcdDown?: number;
  /** Per leader fault: from the kill (or SIGSTOP) to the first write acknowledged at a newer epoch. */
  failoverMs: { kill: number[]; stop: number[] };
}

function pick(ctx: Ctx, st: State): Kind {
  let r = ctx.random();
  let kind: Kind = KINDS[KINDS.length - 1][0];
  for (const [k, p] of KINDS) {
    if (r < p) {
      kind = k;
      break;
    }
    r -= p;
  }
  if (!ctx.running()) kind = KINDS.find(([k]) => st.done[k] === 0)?.[0] ?? 'kill-leader';
  // One etcd member down at a time: two would cost etcd its quorum.
  return kind === 'kill-etcd' && st.etcdDown !== undefined ? 'kill-leader' : kind;
}

async function moreWrites(ctx: Ctx, what: string): Promise<void> {
  const from = ctx.load.acked.length;
  await waitFor(() => ctx.load.acked.length >= from + WRITES_PER_ROUND, `writes to be acknowledged ${what}`, REACTION_DEADLINE_MS);
  await sleep(ctx.random.between(100, 800));
}

/** The first write acknowledged at an epoch above `epoch`, from ledger index `from` on. */
function firstNewer(acked: readonly AckedWrite[], from: number, epoch: number): AckedWrite | undefined {
  for (let i = from; i < acked.length; i++) if (acked[i].epoch > epoch) return acked[i];
  return undefined;
}

/** Exactly one node answers as the master, the one etcd names; every other node is its follower at its epoch. */
async function checkOneMaster(ctx: Ctx, round: number): Promise<void> {
  const { cluster } = ctx;
  const leader = await cluster.etcdLeader();
  const answers = await Promise.all(cluster.live().map(async (n) => ({ id: n.id, s: await status(n.address).catch((err: Error) => err) })));
  const masters = answers.filter((a) => !(a.s instanceof Error) && roleOf(a.s) === 'master').map((a) => a.id);
  if (masters.length !== 1 || masters[0] !== leader?.nodeId) ctx.problem(`after round ${round} the nodes answering as master are ${masters.join(', ') || 'none'}; etcd names node ${leader?.nodeId}`);
  for (const a of answers) {
    if (a.id === leader?.nodeId) continue;
    if (a.s instanceof Error) ctx.problem(`after round ${round} node ${a.id} does not answer: ${a.s.message}`);
    else if (roleOf(a.s) !== 'follower' || a.s.self?.epoch !== leader?.epoch) ctx.problem(`after round ${round} node ${a.id} is ${roleOf(a.s)} at epoch ${a.s.self?.epoch ?? a.s.epoch}, not a follower at epoch ${leader?.epoch}`);
  }
}

/** Every node but the leader caught up with it: the next fault starts from a cluster in sync. */
async function allCaughtUp(ctx: Ctx, leaderId: number, what: string): Promise<void> {
  for (const id of ctx.cluster.nodes.keys()) if (id !== leaderId) await waitCaughtUp(ctx.cluster, id, what);
}

/**
 * The leader fails: SIGKILL, or SIGSTOP for longer than the TTL (half the time until a new
 * leader took writes, half the time only TTL + up to 1.2 s, so it may resume before an
 * election and even win the next one). A leader of a newer epoch must take writes; the old
 * node comes back (restarted as before, or SIGCONT) and must rejoin as its follower.
 */
async function leaderRound(ctx: Ctx, st: State, round: number, how: 'kill' | 'stop'): Promise<string> {
  const { cluster, load } = ctx;
  await moreWrites(ctx, 'before the leader fails');
  const old = await cluster.waitLeader(0, 'the current leader');
  const node = cluster.node(old.id);
  const from = load.acked.length;
  const t0 = Date.now();
  let first: AckedWrite;
  let pausedMs = 0;
  if (how === 'kill') {
    await cluster.kill(old.id);
    ctx.fault(`SIGKILL the leader (node ${old.id}, epoch ${old.epoch}) after ${from} acknowledged writes`);
    first = await waitFor(() => firstNewer(load.acked, from, old.epoch), `a write acknowledged at an epoch above ${old.epoch} after the leader's SIGKILL`, REACTION_DEADLINE_MS, 10);
  } else {
    const untilElected = ctx.random() < 0.5;
    const minMs = untilElected ? TTL_MS : TTL_MS + ctx.random.between(200, 1_200);
    cluster.pause(old.id);
    await sleep(minMs);
    if (untilElected) {
      await waitFor(() => firstNewer(load.acked, from, old.epoch), `a write acknowledged at an epoch above ${old.epoch} while the leader is stopped`, REACTION_DEADLINE_MS, 10);
      await sleep(ctx.random.between(0, 1_000));
    }
    cluster.resume(old.id);
    pausedMs = Date.now() - t0;
    ctx.fault(`SIGSTOP the leader (node ${old.id}, epoch ${old.epoch}) for ${pausedMs} ms${untilElected ? ', until a new leader took writes' : ''}`);
    first = await waitFor(() => firstNewer(load.acked, from, old.epoch), `a write acknowledged at an epoch above ${old.epoch} after the leader's SIGSTOP`, REACTION_DEADLINE_MS, 10);
  }
  const took = first.at! - t0;
  st.failoverMs[how].push(took);
  const now = await cluster.waitLeader(old.epoch, `a leader above epoch ${old.epoch}`, REACTION_DEADLINE_MS);
  // When etcd elected it (its log line): the rest of `took` is the writers finding it.
  const elected = cluster.elections().find((e) => e.epoch > old.epoch);
  if (how === 'kill') await cluster.restart(old.id);
  if (now.id !== old.id) {
    await waitFor(async () => roleOf(await status(node.address)) === 'follower', `node ${old.id} to rejoin as a follower of node ${now.id}`, REACTION_DEADLINE_MS, 50);
  }
  await allCaughtUp(ctx, now.id, `after round ${round}`);
  return `${how === 'kill' ? 'SIGKILL' : `SIGSTOP (${pausedMs} ms)`} of leader node ${old.id} at epoch ${old.epoch}; node ${now.id} leads at epoch ${now.epoch}, elected ${elected ? elected.at - t0 : '?'} ms and first write acknowledged ${took} ms after the fault`;
}

/** A follower is SIGKILLed mid-load and restarted as before; the leader goes on with the other one's acknowledgements. */
async function followerRound(ctx: Ctx, round: number): Promise<string> {
  const { cluster } = ctx;
  await moreWrites(ctx, 'before a follower dies');
  const leader = await cluster.waitLeader(0, 'the current leader');
  const id = ctx.random.pick([...cluster.nodes.keys()].filter((x) => x !== leader.id));
  await cluster.kill(id);
  ctx.fault(`SIGKILL follower node ${id} (leader node ${leader.id})`);
  await sleep(ctx.random.between(0, 1_000));
  await cluster.restart(id);
  await allCaughtUp(ctx, leader.id, `after round ${round}`);
  return `SIGKILL of follower node ${id}, restarted`;
}

/** What a leader logs when its lease's deadline passed without a renewal (failover-agent.ts). */
const FENCED_MSG = 'failover: the leader lease could not be renewed in time; acknowledging no write until etcd confirms it';

/**
 * One etcd member (its raft leader half the time) is SIGKILLed; it stays down through the
 * next round. Writes must go on: the round watches them for two TTLs and notes the longest
 * pause between acknowledgements and whether a leader fenced itself meanwhile.
 */
async function etcdRound(ctx: Ctx, st: State): Promise<string> {
  const { cluster, load } = ctx;
  await moreWrites(ctx, 'before an etcd member dies');
  const before = await cluster.waitLeader(0, 'the current leader');
  const raftLeader = await cluster.etcd.leaderIndex();
  const i = raftLeader !== undefined && ctx.random() < 0.5 ? raftLeader : ctx.random.pick([0, 1, 2]);
  const from = load.acked.length;
  const t0 = Date.now();
  await cluster.etcd.killMember(i);
  st.etcdDown = i;
  ctx.fault(`SIGKILL etcd member ${i}${i === raftLeader ? ' (its raft leader)' : ''}`);
  const watchUntil = t0 + 2 * TTL_MS;
  await waitFor(() => load.acked.at(-1)!.at! > watchUntil, 'writes acknowledged two TTLs after an etcd member died', REACTION_DEADLINE_MS, 50);
  let gap = 0;
  let last = t0;
  for (const w of load.acked.slice(from)) {
    gap = Math.max(gap, w.at! - last);
    last = w.at!;
  }
  const fenced = cluster.history.flatMap(({ proc }) => proc.logs.filter((l) => l.msg === FENCED_MSG && Number(l.time) >= t0)).length;
  const after = await cluster.waitLeader(0, 'the leader with an etcd member down');
  const leader = before.id === after.id && before.epoch === after.epoch ? `unchanged (node ${after.id})` : `node ${before.id} at epoch ${before.epoch} -> node ${after.id} at epoch ${after.epoch}`;
  return `SIGKILL of etcd member ${i}${i === raftLeader ? ' (raft leader)' : ''}; over ${Date.now() - t0} ms the longest pause between acknowledgements was ${gap} ms, ${fenced} lease fence(s); leader ${leader}`;
}

function summary(ms: number[]): string {
  if (ms.length === 0) return 'none';
  const s = [...ms].sort((a, b) => a - b);
  return `median ${s[Math.floor((s.length - 1) / 2)]} ms, ${s[0]}..${s[s.length - 1]} ms over ${s.length}`;
}

/**
 * Automatic failover on etcd under load, in rounds chosen by the seed: the leader is
 * SIGKILLed or SIGSTOPped past its TTL, a follower is SIGKILLed, or one of the 3 etcd
 * members is (it stays down through the next round, so a failover happens without it,
 * and is restarted after). Each time the cluster must elect a leader that takes writes on
 * its own; killed nodes are started as before and must rejoin as followers. After every
 * round exactly one node answers as master, the one etcd names. At the end: the common
 * oracles on the final master, the rollback files (only unacknowledged writes), and the
 * acknowledgements against the elections (ack-epoch-oracles.ts). Rounds go on past the
 * duration until every kind was injected.
 */
export const failoverScenario: ScenarioDef<FailoverCluster> = {
  id: '9',
  title: 'automatic failover on etcd: SIGKILL or SIGSTOP the leader, SIGKILL a follower or an etcd member, under load; repeat',
  startCluster: () => FailoverCluster.start({ followers: FOLLOWERS, ttlSeconds: TTL_S, ackFollowers: ACK_FOLLOWERS }),
  load: { ackFollowers: ACK_FOLLOWERS, ackTimeoutMs: ACK_TIMEOUT_MS, timeoutMs: 3_000 },
  async run(ctx) {
    const st: State = { done: { 'kill-etcd': 0, 'kill-leader': 0, 'stop-leader': 0, 'kill-follower': 0 }, failoverMs: { kill: [], stop: [] } };
    for (let round = 1; ctx.running() || Object.values(st.done).includes(0) || st.etcdDown !== undefined; round++) {
      const kind = pick(ctx, st);
      const down = st.etcdDown;
      let what: string;
      if (kind === 'kill-etcd') what = await etcdRound(ctx, st);
      else if (kind === 'kill-follower') what = await followerRound(ctx, round);
      else what = await leaderRound(ctx, st, round, kind === 'kill-leader' ? 'kill' : 'stop');
      st.done[kind]++;
      if (down !== undefined) {
        // The member missed a round: it comes back on its data and catches up from its peers.
        await ctx.cluster.etcd.restartMember(down);
        st.etcdDown = undefined;
        what += `; etcd member ${down} restarted`;
      }
      await checkOneMaster(ctx, round);
      ctx.note(`round ${round}: ${what}${down !== undefined ? ` (with etcd member ${down} down)` : ''}`);
    }
    ctx.note(`failover after SIGKILL of the leader (TTL ${TTL_MS} ms): ${summary(st.failoverMs.kill)}; after SIGSTOP: ${summary(st.failoverMs.stop)}`);
    ctx.note(`rounds: ${Object.entries(st.done).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  },
  async finalCheck(cluster, load, report) {
    for (const code of ['INTERNAL', 'UNKNOWN']) {
      const n = load.errors.get(code);
      if (n) report.problem(`${n} writes failed with ${code}, first: ${load.errorSamples.get(code)}`);
    }
    await checkRollbacks(cluster, load, report);
    checkAckEpochs(load.acked, cluster.elections(), cluster.freezes, cluster.finalEpochs, report);
  },
};
