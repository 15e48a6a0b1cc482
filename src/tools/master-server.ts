#!/usr/bin/env node
import { addOptions, LOG_SEGMENT_OPTION, DATA_ROOT_OPTION, LOG_OPTIONS } from '../common/options.js';
import { cli, logStartFailure, runCli } from './cli.js';
import { checkDataDir } from '../common/data-dir.js';
import { SERVER_SECURITY_OPTIONS, serverSecurityFromArgv, warnIfExposed, withSecurityOptions } from '../wire/security.js';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MASTER_ADDRESS,
  DEFAULT_METRICS_LISTEN,
  masterDataDir,
  parseAddress,
  parseMetricsListen,
  parseNonNegativeInt,
  parsePath,
  parsePositiveInt,
} from '../common/config.js';
import { ExitCode } from './exit-codes.js';
import { catchStopSignals } from '../common/lifecycle.js';
import { createLogger, type LogFormat } from '../common/logger.js';
import { DEFAULT_ACK_TIMEOUT_MS } from '../master/ack-policy.js';
import { NodeRunner } from '../node/node-runner.js';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS, parseFollowerId } from '../common/config.js';
import { DEFAULT_PROGRESS_INTERVAL_MS } from '../follower/progress.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv } from '../wire/security.js';
import { DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS } from '../master/write-gate.js';

const NAME = 'master-server';
/** A sanity bound for follower counts in options (uint32 on the wire). */
const MAX_FOLLOWER_COUNT = 10_000;
const followerCount = (raw: unknown, flag: string) => parseNonNegativeInt(raw, flag, MAX_FOLLOWER_COUNT);

await runCli(NAME, async () => {
  const argv = await withSecurityOptions(addOptions(
    cli(NAME, '$0 [options]\n\nRuns the master: owns the master store, takes writes, and streams its log to followers.'),
    {
      'node-id': { type: 'string', default: '', env: 'LR_NODE_ID', describe: 'This node\'s id (a positive integer, unique among the master and its followers): once deposed by a promoted follower, the node rejoins as follower <node-id>. Empty: none (a deposed master then only stops taking writes)', parse: (v) => (v === '' ? '' : parseFollowerId(v)) },
      listen: { type: 'string', default: DEFAULT_MASTER_ADDRESS, env: 'LR_MASTER_LISTEN', describe: 'gRPC address to serve on (host:port; port 0 picks a free port)', parse: (v) => parseAddress(v, { allowPortZero: true }) },
      ...DATA_ROOT_OPTION,
      'data-dir': { type: 'string', env: 'LR_MASTER_DATA_DIR', describe: 'Master data directory  (default: <data-root>/master)', parse: parsePath },
      sync: { type: 'boolean', default: true, env: 'LR_MASTER_SYNC', describe: 'fsync each group commit before acknowledging it; --no-sync is faster but a power loss can lose acknowledged writes' },
      'max-group-entries': { type: 'number', default: 10_000, env: 'LR_MAX_GROUP_ENTRIES', describe: 'Most writes (seqs) committed together in one batch and one fsync', parse: parsePositiveInt },
      'heartbeat-interval-ms': { type: 'number', default: DEFAULT_HEARTBEAT_INTERVAL_MS, env: 'LR_HEARTBEAT_INTERVAL_MS', describe: 'Idle time after which a heartbeat is sent on each follower stream', parse: parsePositiveInt },
      'retain-entries': { type: 'number', default: 100_000, env: 'LR_RETAIN_ENTRIES', describe: 'Log retention: always keep at least the newest this many entries', parse: parsePositiveInt },
      'retain-age-ms': { type: 'number', default: 0, env: 'LR_RETAIN_AGE_MS', describe: 'Log retention: also keep entries younger than this (0: no age rule)', parse: parseNonNegativeInt },
      'retain-bytes': { type: 'number', default: 0, env: 'LR_RETAIN_BYTES', describe: 'Log retention: also keep the newest entries up to this many bytes on disk (0: no bytes rule)', parse: parseNonNegativeInt },
      'slot-max-lag-entries': { type: 'number', default: 10_000_000, env: 'LR_SLOT_MAX_LAG_ENTRIES', describe: 'Retention cap: the log stops waiting for a follower this many entries behind (it gets a snapshot later)', parse: parsePositiveInt },
      'slot-max-lag-bytes': { type: 'number', default: 1024 ** 3, env: 'LR_SLOT_MAX_LAG_BYTES', describe: 'Retention cap in bytes of log on disk (0: no bytes cap)', parse: parseNonNegativeInt },
      ...LOG_SEGMENT_OPTION,
      'trim-interval-ms': { type: 'number', default: 1_000, env: 'LR_TRIM_INTERVAL_MS', describe: 'How often the log is trimmed', parse: parsePositiveInt },
      'repair-log': { type: 'boolean', default: false, env: 'LR_REPAIR_LOG', describe: 'If a log entry is corrupt, drop the log from it on and start a new history (followers resync by snapshot) instead of refusing to start' },
      'ack-followers': { type: 'number', default: 0, env: 'LR_MASTER_ACK_FOLLOWERS', describe: 'Default for writes that do not say: answer once this many followers durably applied the write (0: once committed on the master)', parse: followerCount },
      'ack-timeout-ms': { type: 'number', default: DEFAULT_ACK_TIMEOUT_MS, env: 'LR_MASTER_ACK_TIMEOUT_MS', describe: 'Default longest wait for those followers; on timeout the write stays committed and the answer says REPLICATION_TIMEOUT', parse: parsePositiveInt },
      'min-followers': { type: 'number', default: 0, env: 'LR_MASTER_MIN_FOLLOWERS', describe: 'Refuse writes (NOT_ENOUGH_FOLLOWERS) while fewer than this many followers are connected with lag <= --min-followers-max-lag-ms (0: never refuse)', parse: followerCount },
      'min-followers-max-lag-ms': { type: 'number', default: DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS, env: 'LR_MASTER_MIN_FOLLOWERS_MAX_LAG_MS', describe: 'Lag (and time since the last acknowledgement) above which a follower does not count for --min-followers', parse: parsePositiveInt },
      'metrics-listen': { type: 'string', default: DEFAULT_METRICS_LISTEN, env: 'LR_MASTER_METRICS_LISTEN', describe: 'HTTP address of the Prometheus metrics (GET /metrics); port 0 picks a free port (logged, and in endpoint.json); "off" disables', parse: parseMetricsListen },
      ...LOG_OPTIONS,
    },
  ), { ...SERVER_SECURITY_OPTIONS, ...CLIENT_SECURITY_OPTIONS }).parse();

  const log = createLogger(NAME, argv['log-level'] as string, argv['log-format'] as LogFormat);
  const stop = catchStopSignals(log); // before start-up: a signal meanwhile still closes the store
  const { node, security } = await logStartFailure(log, async () => {
    const security = serverSecurityFromArgv(argv, log);
    const dataDir = (argv['data-dir'] as string | undefined) ?? masterDataDir(argv['data-root'] as string);
    checkDataDir(dataDir);
    const nodeId = argv['node-id'] === '' ? undefined : (argv['node-id'] as number);
    const master = {
      dataDir,
      listen: argv.listen as string,
      sync: argv.sync as boolean,
      maxGroupEntries: argv['max-group-entries'] as number,
      heartbeatIntervalMs: argv['heartbeat-interval-ms'] as number,
      retention: {
        retainEntries: BigInt(argv['retain-entries'] as number),
        retainAgeMs: argv['retain-age-ms'] as number,
        retainBytes: argv['retain-bytes'] as number,
        slotMaxLagEntries: BigInt(argv['slot-max-lag-entries'] as number),
        slotMaxLagBytes: argv['slot-max-lag-bytes'] as number,
        trimIntervalMs: argv['trim-interval-ms'] as number,
      },
      repairLog: argv['repair-log'] as boolean,
      maxSegmentBytes: argv['log-segment-bytes'] as number,
      ack: { followers: argv['ack-followers'] as number, timeoutMs: argv['ack-timeout-ms'] as number },
      gate: { minFollowers: argv['min-followers'] as number, maxLagMs: argv['min-followers-max-lag-ms'] as number },
      metricsListen: argv['metrics-listen'] as string | undefined,
      log,
      security,
    };
    // After stepping down, the same directory and address serve as follower <node-id>.
    const follower = {
      dataDir,
      listen: argv.listen as string,
      sync: argv.sync as boolean,
      retainEntries: BigInt(argv['retain-entries'] as number),
      maxSegmentBytes: argv['log-segment-bytes'] as number,
      heartbeatTimeoutMs: DEFAULT_HEARTBEAT_TIMEOUT_MS,
      progressIntervalMs: DEFAULT_PROGRESS_INTERVAL_MS,
      metricsListen: argv['metrics-listen'] as string | undefined,
      log,
      security,
      masterSecurity: clientSecurityFromArgv(argv),
    };
    const node = await NodeRunner.start({ nodeId, master, follower, clientSecurity: clientSecurityFromArgv(argv), log }, { kind: 'master' });
    return { node, security };
  });
  warnIfExposed(NAME, node.address, security, log);
  let fatal = false;
  await Promise.race([
    stop.whenStopped(() => node.close()),
    node.failed.then(async (err) => {
      fatal = true;
      log.fatal({ code: (err as { code?: string })?.code }, 'stopping after a store failure; restart to recover from the store');
      await node.close();
    }),
  ]);
  return fatal ? ExitCode.STORE : ExitCode.OK;
});
