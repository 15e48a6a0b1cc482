#!/usr/bin/env node
import { addOptions, LOG_SEGMENT_OPTION, DATA_ROOT_OPTION, LOG_OPTIONS, MASTER_OPTION } from '../common/options.js';
import { checkArgs, cli, logStartFailure, runCli } from './cli.js';
import { checkDataDir } from '../common/data-dir.js';
import {
  CLIENT_SECURITY_OPTIONS,
  clientSecurityFromArgv,
  SERVER_SECURITY_OPTIONS,
  serverSecurityFromArgv,
  warnIfExposed,
  withSecurityOptions,
} from '../wire/security.js';
import {
  DEFAULT_FOLLOWER_LISTEN,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_METRICS_LISTEN,
  followerDataDir,
  parseAddress,
  parseFollowerId,
  parseMetricsListen,
  parsePath,
  parsePositiveInt,
} from '../common/config.js';
import { catchStopSignals } from '../common/lifecycle.js';
import { createLogger, type LogFormat } from '../common/logger.js';
import { NodeRunner } from '../node/node-runner.js';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../common/config.js';
import { DEFAULT_ACK_TIMEOUT_MS } from '../master/ack-policy.js';
import { DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS } from '../master/write-gate.js';
import { DEFAULT_PROGRESS_INTERVAL_MS } from '../follower/progress.js';

const NAME = 'follower-client';
/** The read service is a server (TLS files, client auth, token table); toward the master it is a client. */
const FOLLOWER_SECURITY_OPTIONS = { ...SERVER_SECURITY_OPTIONS, ...CLIENT_SECURITY_OPTIONS };

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(NAME, '$0 <id> [options]\n\nRuns follower <id>: keeps its own store in step with the master and serves reads from it.').command(
      '$0 <id>',
      false,
      (y) => y.positional('id', { type: 'string', describe: 'Follower id, a positive integer (names the data directory <data-root>/follower-<id>)' }),
    ),
    {
      ...MASTER_OPTION,
      upstream: { type: 'string', default: '', env: 'LR_FOLLOWER_UPSTREAM', describe: 'Node to stream from: the master or another follower (chained followers); empty: the --master address. --master stays the address writes are redirected to', parse: (v) => (v === '' ? '' : parseAddress(v)) },
      listen: { type: 'string', default: DEFAULT_FOLLOWER_LISTEN, env: 'LR_FOLLOWER_LISTEN', describe: 'Address to serve reads on (port 0 picks a free port; get-data finds it through the data directory)', parse: (v) => parseAddress(v, { allowPortZero: true }) },
      ...DATA_ROOT_OPTION,
      'data-dir': { type: 'string', env: 'LR_FOLLOWER_DATA_DIR', describe: 'This follower\'s data directory  (default: <data-root>/follower-<id>)', parse: parsePath },
      sync: { type: 'boolean', default: true, env: 'LR_FOLLOWER_SYNC', describe: 'fsync each applied batch; --no-sync is faster, after a power loss the follower resumes from an earlier seq, and its acknowledgements do not count for writes that wait for followers' },
      'heartbeat-timeout-ms': { type: 'number', default: DEFAULT_HEARTBEAT_TIMEOUT_MS, env: 'LR_HEARTBEAT_TIMEOUT_MS', describe: 'Reconnect when the master has been silent this long', parse: parsePositiveInt },
      'progress-interval-ms': { type: 'number', default: DEFAULT_PROGRESS_INTERVAL_MS, env: 'LR_PROGRESS_INTERVAL_MS', describe: 'How often snapshot and catch-up progress is logged when stderr is not a terminal (a terminal gets a live bar)', parse: parsePositiveInt },
      'metrics-listen': { type: 'string', default: DEFAULT_METRICS_LISTEN, env: 'LR_FOLLOWER_METRICS_LISTEN', describe: 'HTTP address of the Prometheus metrics (GET /metrics); port 0 picks a free port (logged, and in endpoint.json); "off" disables', parse: parseMetricsListen },
      'retain-entries': { type: 'number', default: 100_000, env: 'LR_FOLLOWER_RETAIN_ENTRIES', describe: "The follower's own log keeps at least the newest this many applied entries (older whole segments are deleted)", parse: parsePositiveInt },
      ...LOG_SEGMENT_OPTION,
      'audit-file': { type: 'string', default: '', env: 'LR_FOLLOWER_AUDIT_FILE', describe: 'Audit mode: append a line to this file for every store open, applied seq range and installed snapshot, to prove nothing was applied twice or skipped (empty: off)' },
      ...LOG_OPTIONS,
    },
  ), FOLLOWER_SECURITY_OPTIONS), (a) => {
    a.id = parseFollowerId(a.id);
  }).parse();
  const followerId = argv.id as number;
  const log = createLogger(NAME, argv['log-level'] as string, argv['log-format'] as LogFormat).child({ followerId });
  const stop = catchStopSignals(log); // before start-up: a signal meanwhile still closes the store
  const { node, security } = await logStartFailure(log, async () => {
    const security = serverSecurityFromArgv(argv, log);
    const masterSecurity = clientSecurityFromArgv(argv);
    const dataDir = (argv['data-dir'] as string | undefined) ?? followerDataDir(argv['data-root'] as string, followerId);
    checkDataDir(dataDir);
    const follower = {
      dataDir,
      listen: argv.listen as string,
      sync: argv.sync as boolean,
      retainEntries: BigInt(argv['retain-entries'] as number),
      maxSegmentBytes: argv['log-segment-bytes'] as number,
      heartbeatTimeoutMs: argv['heartbeat-timeout-ms'] as number,
      progressIntervalMs: argv['progress-interval-ms'] as number,
      metricsListen: argv['metrics-listen'] as string | undefined,
      auditFile: (argv['audit-file'] as string) || undefined,
      log,
      security,
      masterSecurity,
    };
    // Once promoted (replication-admin promote), the same directory and address serve as
    // the master, with the master's defaults.
    const master = {
      dataDir,
      listen: argv.listen as string,
      sync: argv.sync as boolean,
      maxGroupEntries: 10_000,
      heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
      retention: {
        retainEntries: BigInt(argv['retain-entries'] as number),
        retainAgeMs: 0,
        retainBytes: 0,
        slotMaxLagEntries: 10_000_000n,
        slotMaxLagBytes: 1024 ** 3,
        trimIntervalMs: 1_000,
      },
      repairLog: false,
      maxSegmentBytes: argv['log-segment-bytes'] as number,
      ack: { followers: 0, timeoutMs: DEFAULT_ACK_TIMEOUT_MS },
      gate: { minFollowers: 0, maxLagMs: DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS },
      metricsListen: argv['metrics-listen'] as string | undefined,
      log,
      security,
    };
    const node = await NodeRunner.start({ nodeId: followerId, master, follower, clientSecurity: masterSecurity, log }, {
      kind: 'follower',
      upstream: (argv.upstream as string) || (argv.master as string),
      masterAddress: argv.master as string,
    });
    return { node, security };
  });
  warnIfExposed(NAME, node.address, security, log);
  await Promise.race([stop.whenStopped(() => node.close()), node.failed.then(() => node.close())]);
});
