#!/usr/bin/env node
import os from 'node:os';
import path from 'node:path';
import { addOptions } from '../../common/options.js';
import { cli, runCli } from '../cli.js';
import { parseNonNegativeInt, parsePositiveInt } from '../../common/config.js';
import { ErrorCode, ReplicatorError } from '../../common/errors.js';
import { ingestPhase, lagPhase, SMALL_YOUNG_GENERATION, stalledFollowerPhase, type PhaseOptions } from './phases.js';
import { DEFAULT_LEADER_TTL_SECONDS } from '../../coordination/leader-lease.js';
import { etcdVersion, failoverTimes } from './failover.js';
import { fsyncLatencyMs, rawLevel } from './raw-level.js';
import { rawPair } from './raw-pair.js';
import { replayPhase } from './replay.js';
import { realtimeAvailable, REALTIME_LAUNCHER } from './realtime.js';
import { redisFigures, redisVersion } from './redis.js';
import { redisWaitLatency } from './redis-wait.js';
import { report, type Figures } from './report.js';
import { Workload } from './workload.js';

const NAME = 'bench';
const GROUPS = ['raw', 'ingest', 'stalled', 'replay', 'lag', 'redis', 'failover'] as const;

function list(raw: unknown): string[] {
  return String(raw).split(',').filter(Boolean);
}

function parseGroups(raw: unknown, flag: string): Set<string> {
  const only = new Set(list(raw));
  for (const g of only) {
    if (!(GROUPS as readonly string[]).includes(g)) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${flag}: unknown group "${g}" (choose from ${GROUPS.join(', ')})`);
  }
  return only;
}

await runCli(NAME, async () => {
  const argv = await addOptions(
    cli(NAME, 'npm run bench -- [options]\n\nStarts real master and follower processes (and Redis, if installed) and prints one table of\nfigures, each with its ratio to raw classic-level batched writes measured in the same run.'),
    {
      entries: { type: 'number', default: 1_000_000, env: 'LR_BENCH_ENTRIES', describe: 'Entries (N) written per measurement: 16-byte keys, distinct', parse: parsePositiveInt },
      'value-bytes': { type: 'number', default: 100, env: 'LR_BENCH_VALUE_BYTES', describe: 'Bytes per value (random, incompressible)', parse: parsePositiveInt },
      followers: { type: 'number', default: 2, env: 'LR_BENCH_FOLLOWERS', describe: 'Most followers attached during ingest (ingest is measured with 0 up to this many)', parse: parseNonNegativeInt },
      sync: { type: 'boolean', default: true, env: 'LR_BENCH_SYNC', describe: 'Durability: run the master and followers with --sync (fsync before acknowledging / per applied batch)' },
      clients: { type: 'number', default: 8, env: 'LR_BENCH_CLIENTS', describe: 'Concurrent writers, each on its own connection (also redis-benchmark -c)', parse: parsePositiveInt },
      batch: { type: 'number', default: 1_000, env: 'LR_BENCH_BATCH', describe: 'Writes per Write request (also redis-benchmark -P, commands pipelined per connection)', parse: parsePositiveInt },
      'raw-batch': { type: 'number', default: 100, env: 'LR_BENCH_RAW_BATCH', describe: 'Entries per LevelDB batch in the raw classic-level rows', parse: parsePositiveInt },
      runs: { type: 'number', default: 3, env: 'LR_BENCH_RUNS', describe: 'Repetitions; the table shows medians and the spread', parse: parsePositiveInt },
      'lag-rates': { type: 'string', default: '1000,10000', env: 'LR_BENCH_LAG_RATES', describe: 'Steady write rates (writes/s) at which replication lag is measured', parse: (v, f) => list(v).map((r) => parsePositiveInt(r, f)) },
      'lag-seconds': { type: 'number', default: 10, env: 'LR_BENCH_LAG_SECONDS', describe: 'Seconds of steady writes per lag rate', parse: parsePositiveInt },
      'failover-runs': { type: 'number', default: 5, env: 'LR_BENCH_FAILOVER_RUNS', describe: 'Failovers (kill -9 of the master) measured per run in the failover row', parse: parsePositiveInt },
      'failover-ttl-s': { type: 'number', default: DEFAULT_LEADER_TTL_SECONDS, env: 'LR_BENCH_FAILOVER_TTL_S', describe: 'The leader lease TTL (--lease-ttl-s) of the failover row', parse: parsePositiveInt },
      only: { type: 'string', default: GROUPS.join(','), env: 'LR_BENCH_ONLY', describe: `Row groups to run: ${GROUPS.join(', ')}`, parse: parseGroups },
      'work-dir': { type: 'string', default: os.tmpdir(), env: 'LR_BENCH_WORK_DIR', describe: 'Where the temporary stores go (a fresh subdirectory, removed at the end)' },
      'cpu-prof-dir': { type: 'string', default: '', env: 'LR_BENCH_CPU_PROF_DIR', describe: 'Run the servers with node --cpu-prof, writing profiles here' },
    },
  ).parse();

  const entries = argv.entries as number;
  const batch = argv.batch as number;
  const rawBatch = argv['raw-batch'] as number;
  const runs = argv.runs as number;
  const maxFollowers = argv.followers as number;
  const lagRates = argv['lag-rates'] as number[];
  const lagSeconds = argv['lag-seconds'] as number;
  const only = argv.only as Set<string>;
  const w = new Workload(argv['value-bytes'] as number);
  const profDir = String(argv['cpu-prof-dir']);
  const root = path.join(String(argv['work-dir']), `lr-bench-${process.pid}`);
  const o: PhaseOptions = {
    dir: path.join(root, 'cluster'),
    w,
    entries,
    batch,
    clients: argv.clients as number,
    node: { sync: argv.sync as boolean, nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profDir)] : [] },
  };
  const redis = only.has('redis') ? redisVersion() : undefined;
  const realtime = only.has('lag') && realtimeAvailable();
  const etcd = only.has('failover') ? etcdVersion() : undefined;
  const failoverRuns = argv['failover-runs'] as number;
  const failoverTtl = argv['failover-ttl-s'] as number;

  const figures: Figures = new Map();
  /** Records one run's value of a figure, and shows it at once on stderr (progress). */
  const add = (id: string, v: number, unit: '/s' | 's' | 'ms' | 'us' | 'bytes') => {
    figures.set(id, [...(figures.get(id) ?? []), v]);
    const shown = unit === 'bytes' ? `${(v / 2 ** 20).toFixed(0)} MB` : unit === '/s' ? `${Math.round(v)}/s` : `${v.toFixed(2)} ${unit === 'us' ? 'µs' : unit}`;
    process.stderr.write(`  ${id}: ${shown}\n`);
  };
  const started = Date.now();
  try {
    for (let run = 1; run <= runs; run++) {
      process.stderr.write(`run ${run}/${runs}\n`);
      const [fsyncP50, fsyncP99] = fsyncLatencyMs(path.join(root, 'probe'));
      add('fsync-p50', fsyncP50, 'ms');
      add('fsync-p99', fsyncP99, 'ms');
      // The raw rows always run: every ratio is taken against them.
      add('raw', await rawLevel(path.join(root, 'raw'), w, 'plain', entries, rawBatch), '/s');
      if (only.has('raw')) {
        for (const mode of ['fsync', 'segment'] as const) add(`raw-${mode}`, await rawLevel(path.join(root, 'raw'), w, mode, entries, rawBatch), '/s');
        // The current layout's storage step alone, at the master's group size.
        add('raw-segment-group', await rawLevel(path.join(root, 'raw'), w, 'segment', entries, o.clients * batch), '/s');
        // Batches as large as the master's largest group commit: the most generous ceiling.
        const pair = await rawPair(path.join(root, 'raw-pair'), w.valueBytes, entries, o.clients * batch);
        add('raw-pair', pair.perSecond, '/s');
        add('raw-pair-master-cpu', pair.masterCpuMicros, 'us');
        add('raw-pair-follower-cpu', pair.followerCpuMicros, 'us');
        add('raw-pair-once', (await rawPair(path.join(root, 'raw-pair'), w.valueBytes, entries, o.clients * batch, 'once')).perSecond, '/s');
      }
      if (only.has('ingest')) {
        for (let f = 0; f <= maxFollowers; f++) {
          const r = await ingestPhase(o, f, f === maxFollowers);
          add(`ingest-${f}`, r.ingestPerSecond, '/s');
          if (f === maxFollowers && f > 0) add('e2e', r.endToEndSeconds, 's');
          if (f === maxFollowers) add('snapshot', r.snapshotSeconds, 's');
        }
      }
      if (only.has('stalled')) {
        const r = await stalledFollowerPhase(o);
        add('catch-up', r.catchUpSeconds, 's');
        add('rss', r.masterPeakRssBytes, 'bytes');
        add('rss-anon', r.masterPeakAnonRssBytes, 'bytes');
        // The same load on a master whose young generation is capped (see README, Memory).
        const small = await stalledFollowerPhase(o, { withCatchUp: false, masterNodeArgs: SMALL_YOUNG_GENERATION });
        add('rss-small-young', small.masterPeakRssBytes, 'bytes');
        add('rss-anon-small-young', small.masterPeakAnonRssBytes, 'bytes');
      }
      if (only.has('replay')) add('replay', await replayPhase(path.join(root, 'replay'), w, entries), 's');
      if (only.has('lag')) {
        // As configured, and (when that is durable) also with a follower that does not fsync:
        // the disk's fsync tail is then out of the lag. Then again with both nodes at real-time
        // priority, where that is allowed: the part of the tail that is waiting for a CPU.
        for (const launcher of realtime ? [undefined, REALTIME_LAUNCHER] : [undefined]) {
          for (const followerSync of o.node.sync ? [true, false] : [false]) {
            const prefix = `${followerSync ? 'lag' : 'lag-nosync'}${launcher ? '-rt' : ''}`;
            for (const { rate, lag, wakeup } of await lagPhase(o, lagRates, lagSeconds, followerSync, launcher)) {
              add(`${prefix}-${rate}-p50`, lag.p50, 'ms');
              add(`${prefix}-${rate}-p99`, lag.p99, 'ms');
              add(`${prefix}-${rate}-p999`, lag.p999, 'ms');
              if (launcher) continue; // the probe runs in this (ordinary) process: shown once
              add(`${prefix}-${rate}-wakeup-p99`, wakeup.p99, 'ms');
              add(`${prefix}-${rate}-wakeup-p999`, wakeup.p999, 'ms');
            }
          }
        }
      }
      if (etcd) {
        for (const ms of await failoverTimes(path.join(root, 'failover'), o.node, failoverTtl, failoverRuns)) add('failover', ms, 'ms');
      }
      if (redis) {
        const r = await redisFigures(path.join(root, 'redis'), w, { count: entries, batch, clients: o.clients });
        add('redis-set', r.setsPerSecond, '/s');
        add('redis-e2e', r.endToEndSeconds, 's');
        add('redis-sync', r.fullSyncSeconds, 's');
        for (const { rate, p50, p99, p999 } of await redisWaitLatency(path.join(root, 'redis-wait'), w, lagRates, lagSeconds)) {
          add(`redis-wait-${rate}-p50`, p50, 'ms');
          add(`redis-wait-${rate}-p99`, p99, 'ms');
          add(`redis-wait-${rate}-p999`, p999, 'ms');
        }
      }
    }
  } finally {
    const { rmSync } = await import('node:fs');
    rmSync(root, { recursive: true, force: true });
  }
  process.stdout.write(
    report(figures, {
      entries,
      valueBytes: w.valueBytes,
      batch,
      rawBatch,
      clients: o.clients,
      sync: o.node.sync,
      maxFollowers,
      lagRates,
      lagSeconds,
      runs,
      redis: only.has('redis') ? (redis ?? null) : undefined,
      realtime: only.has('lag') ? realtime : undefined,
      failover: only.has('failover') ? { etcd: etcd ?? null, ttlSeconds: failoverTtl, perRun: failoverRuns } : undefined,
      minutes: (Date.now() - started) / 60_000,
    }),
  );
});
