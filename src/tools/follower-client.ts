#!/usr/bin/env node
import { addOptions, LOG_LEVEL_OPTION } from '../common/options.js';
import { cli, runCli } from './cli.js';
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
  DEFAULT_DATA_ROOT,
  DEFAULT_FOLLOWER_LISTEN,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_MASTER_ADDRESS,
  DEFAULT_METRICS_LISTEN,
  followerDataDir,
  parseAddress,
  parseFollowerId,
  parseMetricsListen,
  parsePositiveInt,
} from '../common/config.js';
import { catchStopSignals } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { startFollower } from '../follower/follower-node.js';
import { DEFAULT_PROGRESS_INTERVAL_MS } from '../follower/progress.js';

const NAME = 'follower-client';
/** The read service is a server (TLS files, client auth, token table); toward the master it is a client. */
const FOLLOWER_SECURITY_OPTIONS = { ...SERVER_SECURITY_OPTIONS, ...CLIENT_SECURITY_OPTIONS };

await runCli(NAME, async () => {
  const argv = await withSecurityOptions(addOptions(
    cli(NAME, '$0 <id> [options]\n\nRuns follower <id>: keeps its own store in step with the master and serves reads from it.').command(
      '$0 <id>',
      false,
      (y) => y.positional('id', { type: 'string', describe: 'Follower id, a positive integer (names the data directory <data-root>/follower-<id>)' }),
    ),
    {
      master: { type: 'string', default: DEFAULT_MASTER_ADDRESS, env: 'LR_MASTER_ADDRESS', describe: 'Address of the master' },
      listen: { type: 'string', default: DEFAULT_FOLLOWER_LISTEN, env: 'LR_FOLLOWER_LISTEN', describe: 'Address to serve reads on (port 0 picks a free port; get-data finds it through the data directory)' },
      'data-root': { type: 'string', default: DEFAULT_DATA_ROOT, env: 'LR_DATA_ROOT', describe: 'Directory holding every node\'s data directory' },
      'data-dir': { type: 'string', env: 'LR_FOLLOWER_DATA_DIR', describe: 'This follower\'s data directory  (default: <data-root>/follower-<id>)' },
      sync: { type: 'boolean', default: true, env: 'LR_FOLLOWER_SYNC', describe: 'fsync each applied batch; --no-sync is faster, after a power loss the follower resumes from an earlier seq, and its acknowledgements do not count for writes that wait for followers' },
      'heartbeat-timeout-ms': { type: 'number', default: DEFAULT_HEARTBEAT_TIMEOUT_MS, env: 'LR_HEARTBEAT_TIMEOUT_MS', describe: 'Reconnect when the master has been silent this long' },
      'progress-interval-ms': { type: 'number', default: DEFAULT_PROGRESS_INTERVAL_MS, env: 'LR_PROGRESS_INTERVAL_MS', describe: 'How often snapshot and catch-up progress is logged when stderr is not a terminal (a terminal gets a live bar)' },
      'metrics-listen': { type: 'string', default: DEFAULT_METRICS_LISTEN, env: 'LR_FOLLOWER_METRICS_LISTEN', describe: 'HTTP address of the Prometheus metrics (GET /metrics); port 0 picks a free port (logged, and in endpoint.json); "off" disables' },
      'audit-file': { type: 'string', default: '', env: 'LR_FOLLOWER_AUDIT_FILE', describe: 'Audit mode: append a line to this file for every store open, applied seq range and installed snapshot, to prove nothing was applied twice or skipped (empty: off)' },
      ...LOG_LEVEL_OPTION,
    },
  ), FOLLOWER_SECURITY_OPTIONS).parse();
  const followerId = parseFollowerId(argv.id);
  const log = createLogger(NAME, argv['log-level'] as string).child({ followerId });
  const stop = catchStopSignals(log); // before start-up: a signal meanwhile still closes the store
  const security = serverSecurityFromArgv(argv, log);
  const masterSecurity = clientSecurityFromArgv(argv);
  const dataDir = (argv['data-dir'] as string | undefined) ?? followerDataDir(argv['data-root'] as string, followerId);
  checkDataDir(dataDir);
  const node = await startFollower({
    followerId,
    dataDir,
    masterAddress: parseAddress(argv.master),
    listen: parseAddress(argv.listen, { allowPortZero: true }),
    sync: argv.sync as boolean,
    heartbeatTimeoutMs: parsePositiveInt(argv['heartbeat-timeout-ms'], '--heartbeat-timeout-ms'),
    progressIntervalMs: parsePositiveInt(argv['progress-interval-ms'], '--progress-interval-ms'),
    metricsListen: parseMetricsListen(argv['metrics-listen']),
    auditFile: (argv['audit-file'] as string) || undefined,
    log,
    security,
    masterSecurity,
  });
  warnIfExposed(NAME, node.readAddress, security, log);
  await stop.whenStopped(() => node.close());
});
