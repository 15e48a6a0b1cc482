import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import type { NodeProcess } from '../../src/tools/harness/node-process.js';
import { Cluster, type ClusterOptions } from './fault-cluster.js';
import { LoadGenerator, type LoadOptions, type WriteTarget } from './load.js';
import { checkFollowerLogs, checkStores, type StoresView } from './oracles.js';
import { waitFor } from './processes.js';

/**
 * What the runner needs of a scenario's cluster: the fault cluster (a fixed master, its
 * followers behind fault proxies) or one whose master moves (promotion-cluster.ts).
 */
export interface ScenarioCluster {
  readonly root: string;
  /** Every process started so far; followers' names start with "follower". */
  readonly history: readonly { name: string; proc: NodeProcess }[];
  /** Where the load writes: the master's address, or a locator of the current master. */
  writeTarget(): WriteTarget;
  /** The current master's Status. */
  status(): Promise<StatusResponse__Output>;
  /** Ends every fault: frozen processes run, dead ones are restarted, links forward again. */
  healAll(): Promise<void>;
  /** Polls until every follower is connected and has applied the master's last seq; returns that seq. */
  waitConverged(timeoutMs?: number): Promise<bigint>;
  /** Digests of every running node, the master's first. */
  digests(): Promise<{ node: string; digest: string; seq: bigint }[]>;
  /** SIGTERM every node; returns the ones that did not stop cleanly in time. */
  stop(): Promise<string[]>;
  /** The stopped nodes' data directories the oracles read. */
  stores(): StoresView;
  destroy(opts?: { keep?: boolean }): Promise<void>;
}

/** What a scenario's fault loop gets. */
export interface ScenarioContext<C extends ScenarioCluster = Cluster> {
  cluster: C;
  load: LoadGenerator;
  /** How long to keep injecting faults. */
  durationMs: number;
  /** Deterministic per seed, so a failing run can be repeated. */
  random: Random;
  /** Counts one injected fault. */
  fault(what: string): void;
  /** A scenario-specific observation for the report (detection times, ...). */
  note(text: string): void;
  /** A broken expectation that is not one of the store oracles. */
  problem(text: string): void;
  /** True until durationMs has passed since the faults started. */
  running(): boolean;
}

/**
 * One scenario. Its methods are declared as methods (bivariant parameters), so a scenario
 * of another cluster type (startCluster) fits the SCENARIOS list.
 */
export interface ScenarioDef<C extends ScenarioCluster = Cluster> {
  id: string;
  title: string;
  /** Options of the fault cluster (when the scenario has no startCluster). */
  cluster?: Partial<ClusterOptions>;
  /** A cluster of another kind; without it the scenario runs on the fault cluster (master + 2 followers). */
  startCluster?(): Promise<C>;
  /** How the load differs (an acknowledgement policy, say). */
  load?: Partial<LoadOptions>;
  /** Why the scenario cannot run here, or undefined. Checked before the cluster starts. */
  unavailable?(): Promise<string | undefined>;
  /** Injects faults under load until ctx.running() is false; must leave faults healed or healable. */
  run(ctx: ScenarioContext<C>): Promise<void>;
  /** Oracles of its own, run on the stopped cluster after the common ones, with the load's final ledger. */
  finalCheck?(cluster: C, load: LoadGenerator, report: { note(text: string): void; problem(text: string): void }): Promise<void>;
}

export interface ScenarioResult {
  id: string;
  title: string;
  skipped?: string;
  faults: number;
  acked: number;
  failed: number;
  timedOut: number;
  lost: number;
  divergent: number;
  /** From the end of the last fault until every follower had applied the master's last seq. */
  convergeMs: number;
  lastSeq: bigint;
  notes: string[];
  problems: string[];
}

export interface Random {
  (): number;
  between(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (() => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }) as Random;
  next.between = (min, max) => min + Math.floor(next() * (max - min + 1));
  next.pick = (items) => items[Math.floor(next() * items.length)];
  return next;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs one scenario end to end on a fresh cluster: load starts, replication is seen to
 * flow, the scenario injects faults for durationMs under continuous load, every fault is
 * healed and the load stops, the followers must converge, the running nodes' digests must
 * be equal at the same seq, every node must stop cleanly, and then the stores are checked
 * entry by entry (oracles.ts), against the master of the end (after promotions, the node
 * that holds the newest epoch), followed by the scenario's own final oracles.
 */
export async function runScenario(def: ScenarioDef<ScenarioCluster>, opts: { durationMs: number; seed: number; log?: (line: string) => void }): Promise<ScenarioResult> {
  const result: ScenarioResult = {
    id: def.id,
    title: def.title,
    faults: 0,
    acked: 0,
    failed: 0,
    timedOut: 0,
    lost: 0,
    divergent: 0,
    convergeMs: 0,
    lastSeq: 0n,
    notes: [],
    problems: [],
  };
  const unavailable = await def.unavailable?.();
  if (unavailable) return { ...result, skipped: unavailable };
  const log = opts.log ?? (() => {});
  let cluster: ScenarioCluster | undefined;
  let writers: LoadGenerator | undefined;
  try {
    cluster = def.startCluster ? await def.startCluster() : await Cluster.start({ followers: 2, ...def.cluster });
    const load = new LoadGenerator(cluster.writeTarget(), { writers: 4, batch: 10, prefix: `s${def.id}`, ...def.load });
    writers = load;
    load.start();
    const c = cluster;
    // Replication flows before the first fault (so the faults hit live streams).
    await waitFor(async () => load.acked.length >= 200 && (await c.status()).followers.every((f) => BigInt(f.appliedSeq) > 0n), 'replication to flow', 30_000, 50);

    const startedAt = Date.now();
    const until = startedAt + opts.durationMs;
    await def.run({
      cluster,
      load,
      durationMs: opts.durationMs,
      random: seededRandom(opts.seed),
      fault: (what) => {
        result.faults++;
        log(`fault ${result.faults} at ${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${what}`);
      },
      note: (text) => result.notes.push(text),
      problem: (text) => result.problems.push(text),
      running: () => Date.now() < until,
    });
    await cluster.healAll();
    const healedAt = Date.now();
    await load.stop();
    result.lastSeq = await cluster.waitConverged(120_000);
    result.convergeMs = Date.now() - healedAt;

    const digests = await cluster.digests();
    for (const d of digests) {
      if (d.seq !== result.lastSeq) result.problems.push(`${d.node} digest taken at seq ${d.seq}, expected ${result.lastSeq}`);
      if (d.digest !== digests[0].digest) result.problems.push(`${d.node} digest ${d.digest.slice(0, 12)}… differs from the master's ${digests[0].digest.slice(0, 12)}…`);
    }
    result.problems.push(...(await cluster.stop()));
    const verdict = await checkStores(cluster.stores(), load, result.lastSeq);
    Object.assign(result, { acked: load.acked.length, failed: load.failed, timedOut: load.timedOut, lost: verdict.lost, divergent: verdict.divergent });
    result.problems.push(...verdict.problems, ...checkFollowerLogs(cluster.history));
    await def.finalCheck?.(cluster, load, { note: (text) => result.notes.push(text), problem: (text) => result.problems.push(text) });
    if (load.errors.size > 0) result.notes.push(`write errors: ${[...load.errors].map(([code, n]) => `${code} ${n}`).join(', ')}`);
    const moved = load.tracker?.stats;
    if (moved) result.notes.push(`writers found the master ${moved.lookups} times by Status, followed ${moved.redirects} redirects, moved to another master ${moved.moves} times`);
    return result;
  } catch (err) {
    // A reaction that never came (a deadline) fails the scenario; the report says which.
    result.problems.push((err as Error).message);
    return result;
  } finally {
    // A scenario that failed midway left its writers running: they would keep the process alive.
    await writers?.stop();
    const keep = result.problems.length > 0;
    await cluster?.destroy({ keep });
    if (keep && cluster) result.notes.push(`kept ${cluster.root} (stores, audit files, process logs)`);
  }
}
