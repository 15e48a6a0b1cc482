import fs from 'node:fs';
import path from 'node:path';
import { benchCluster, LOG_WAIT_MS, waitApplied, type NodeSettings } from './cluster.js';
import { entryLagsMs, parseTrace, summarizeLags, type LagSummary } from './lag.js';
import { paceWrites, writeEntries } from './load.js';
import { startWakeupProbe } from './wakeup-probe.js';
import type { Workload } from './workload.js';

/** The benchmark's phases: each starts its own processes in fresh directories and stops them. */
export interface PhaseOptions {
  dir: string;
  w: Workload;
  entries: number;
  batch: number;
  clients: number;
  node: NodeSettings;
}

/** A follower id for the snapshot row that no other phase uses. */
const SNAPSHOT_FOLLOWER_ID = 100;

function fresh(dir: string): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export interface IngestFigures {
  /** Acknowledged writes per second, with `followers` followers attached. */
  ingestPerSecond: number;
  /** From the start of the load until the last follower has applied every entry. */
  endToEndSeconds: number;
  /** From the snapshot's start until a new follower has installed it (when asked). */
  snapshotSeconds: number;
}

/**
 * Rows 2, 3 and 5: a master with `followers` followers takes N entries from concurrent
 * clients; then (withSnapshot) a new, empty follower is bootstrapped from the N-key store.
 */
export async function ingestPhase(o: PhaseOptions, followers: number, withSnapshot: boolean): Promise<IngestFigures> {
  const c = benchCluster(fresh(o.dir), o.node);
  try {
    await c.startMaster();
    for (let id = 1; id <= followers; id++) {
      c.addFollower(id, {});
      await c.startFollower(id);
    }
    for (const f of c.followers.values()) await f.proc!.waitForLog('connected to master; streaming', LOG_WAIT_MS);
    const load = await writeEntries(c.masterAddress, o.w, { first: 0, count: o.entries, batch: o.batch, clients: o.clients });
    let endToEndSeconds = NaN;
    if (followers > 0) {
      const seenAt = await waitApplied([...c.followers.values()].map((f) => f.readAddress!), load.lastSeq);
      endToEndSeconds = (Math.max(...seenAt) - load.startedAt) / 1000;
    }
    let snapshotSeconds = NaN;
    if (withSnapshot) {
      c.addFollower(SNAPSHOT_FOLLOWER_ID, { dir: path.join(c.root, 'follower-new') });
      const f = await c.startFollower(SNAPSHOT_FOLLOWER_ID);
      const started = await f.proc!.waitForLogAt('master is sending a snapshot', LOG_WAIT_MS);
      const [done] = await waitApplied([f.readAddress!], load.lastSeq);
      snapshotSeconds = (done - started.at) / 1000;
    }
    return { ingestPerSecond: o.entries / load.seconds, endToEndSeconds, snapshotSeconds };
  } finally {
    await c.stop();
  }
}

export interface StalledFigures {
  /** Master VmHWM after N entries were written while a follower was stalled. */
  masterPeakRssBytes: number;
  /** The largest anonymous RSS sampled meanwhile (without LevelDB's mapped table files). */
  masterPeakAnonRssBytes: number;
  /** Entries per second a restarted follower applied, N entries behind. */
  catchUpPerSecond: number;
  catchUpSeconds: number;
}

/** node's young generation capped at 8 MB per semi-space (16 MB by default on 64-bit): row 7c. */
export const SMALL_YOUNG_GENERATION = ['--max-semi-space-size=8'];

/**
 * Rows 7 and 4: follower 1 joins and applies one entry, is stalled (SIGSTOP: its
 * connection stays open but it reads nothing), N entries are written, and the master's
 * peak RSS is read. Then (withCatchUp) follower 1 is killed and restarted: the catch-up is
 * timed from its stream start (log line "connected to master; catching up") to the last
 * entry applied. masterNodeArgs are extra node flags for the master only (row 7c).
 */
export async function stalledFollowerPhase(o: PhaseOptions, { withCatchUp = true, masterNodeArgs = [] as string[] } = {}): Promise<StalledFigures> {
  const c = benchCluster(fresh(o.dir), o.node, { master: { nodeArgs: masterNodeArgs } });
  try {
    const master = await c.startMaster();
    c.addFollower(1, {});
    const follower = await c.startFollower(1);
    const warm = await writeEntries(c.masterAddress, o.w, { first: 0, count: 1, batch: 1, clients: 1 });
    await waitApplied([follower.readAddress!], warm.lastSeq);
    follower.proc!.pause();
    const anon = master.sampleAnonRss();
    const load = await writeEntries(c.masterAddress, o.w, { first: 1, count: o.entries, batch: o.batch, clients: o.clients });
    const masterPeakAnonRssBytes = anon();
    const masterPeakRssBytes = master.memory().peakRss;
    if (!withCatchUp) return { masterPeakRssBytes, masterPeakAnonRssBytes, catchUpPerSecond: NaN, catchUpSeconds: NaN };
    await c.killFollower(1);
    await c.startFollower(1); // on the same data directory, N entries behind
    const started = await follower.proc!.waitForLogAt('connected to master; catching up', LOG_WAIT_MS);
    const [done] = await waitApplied([follower.readAddress!], load.lastSeq);
    const catchUpSeconds = (done - started.at) / 1000;
    return { masterPeakRssBytes, masterPeakAnonRssBytes, catchUpPerSecond: (load.lastSeq - warm.lastSeq) / catchUpSeconds, catchUpSeconds };
  } finally {
    await c.stop(); // a frozen follower is resumed first, so it can stop cleanly
  }
}

export interface LagFigures {
  rate: number;
  lag: LagSummary;
  /** A thread-pool round trip timed meanwhile (see wakeup-probe.ts). */
  wakeup: { p99: number; p999: number };
}

/**
 * Row 6: one follower (fsyncing each applied batch or not: followerSync); steady writes at
 * each rate for `seconds`, one rate after the other; both nodes run under launcher if given
 * (row 6b, see realtime.ts). The nodes' latency traces
 * (LR_LATENCY_TRACE) give commit-to-applied lag per entry; the first tenth of each rate's
 * entries is a warm-up and left out.
 */
export async function lagPhase(o: PhaseOptions, rates: readonly number[], seconds: number, followerSync: boolean, launcher?: string[]): Promise<LagFigures[]> {
  const dir = fresh(o.dir);
  const masterTrace = path.join(dir, 'master.trace');
  const followerTrace = path.join(dir, 'follower.trace');
  const c = benchCluster(dir, { ...o.node, launcher }, {
    master: { env: { LR_LATENCY_TRACE: masterTrace } },
    follower: { env: { LR_LATENCY_TRACE: followerTrace } },
    followerSync,
  });
  const ranges: { rate: number; firstSeq: number; lastSeq: number; wakeup: LagFigures['wakeup'] }[] = [];
  try {
    await c.startMaster();
    c.addFollower(1, {});
    const follower = await c.startFollower(1);
    await follower.proc!.waitForLog('connected to master; streaming', LOG_WAIT_MS);
    let first = 0;
    for (const rate of rates) {
      const probe = startWakeupProbe(dir);
      const r = await paceWrites(c.masterAddress, o.w, { first, rate, seconds });
      first += Math.round(rate * seconds);
      ranges.push({ rate, ...r, wakeup: probe() });
    }
    await waitApplied([follower.readAddress!], ranges[ranges.length - 1].lastSeq);
  } finally {
    await c.stop(); // a clean stop writes the traces out
  }
  const m = parseTrace(fs.readFileSync(masterTrace, 'utf8'));
  const f = parseTrace(fs.readFileSync(followerTrace, 'utf8'));
  return ranges.map(({ rate, firstSeq, lastSeq, wakeup }) => {
    const from = firstSeq + Math.floor((lastSeq - firstSeq + 1) / 10);
    return { rate, lag: summarizeLags(entryLagsMs(m, f, from, lastSeq)), wakeup };
  });
}
