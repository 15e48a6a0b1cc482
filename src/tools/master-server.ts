#!/usr/bin/env node
import { addOptions, LOG_LEVEL_OPTION } from '../common/options.js';
import { cli, runCli } from './cli.js';
import { checkDataDir } from '../common/data-dir.js';
import { SERVER_SECURITY_OPTIONS, serverSecurityFromArgv, warnIfExposed, withSecurityOptions } from '../wire/security.js';
import {
  DEFAULT_DATA_ROOT,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MASTER_ADDRESS,
  DEFAULT_METRICS_LISTEN,
  masterDataDir,
  parseAddress,
  parseMetricsListen,
  parseNonNegativeInt,
  parsePositiveInt,
} from '../common/config.js';
import { ExitCode } from './exit-codes.js';
import { catchStopSignals } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { DEFAULT_ACK_TIMEOUT_MS } from '../master/ack-policy.js';
import { startMaster } from '../master/master-node.js';
import { DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS } from '../master/write-gate.js';

const NAME = 'master-server';
/** A sanity bound for follower counts in options (uint32 on the wire). */
const MAX_FOLLOWER_COUNT = 10_000;

await runCli(NAME, async () => {
  const argv = await withSecurityOptions(addOptions(
    cli(NAME, '$0 [options]\n\nRuns the master: owns the master store, takes writes, and streams its log to followers.'),
    {
      listen: { type: 'string', default: DEFAULT_MASTER_ADDRESS, env: 'LR_MASTER_LISTEN', describe: 'gRPC address to serve on (host:port; port 0 picks a free port)' },
      'data-root': { type: 'string', default: DEFAULT_DATA_ROOT, env: 'LR_DATA_ROOT', describe: 'Directory holding every node\'s data directory' },
      'data-dir': { type: 'string', env: 'LR_MASTER_DATA_DIR', describe: 'Master data directory  (default: <data-root>/master)' },
      sync: { type: 'boolean', default: true, env: 'LR_MASTER_SYNC', describe: 'fsync each group commit before acknowledging it; --no-sync is faster but a power loss can lose acknowledged writes' },
      'max-group-entries': { type: 'number', default: 10_000, env: 'LR_MAX_GROUP_ENTRIES', describe: 'Most writes (seqs) committed together in one batch and one fsync' },
      'heartbeat-interval-ms': { type: 'number', default: DEFAULT_HEARTBEAT_INTERVAL_MS, env: 'LR_HEARTBEAT_INTERVAL_MS', describe: 'Idle time after which a heartbeat is sent on each follower stream' },
      'retain-entries': { type: 'number', default: 100_000, env: 'LR_RETAIN_ENTRIES', describe: 'Log retention: always keep at least the newest this many entries' },
      'retain-age-ms': { type: 'number', default: 0, env: 'LR_RETAIN_AGE_MS', describe: 'Log retention: also keep entries younger than this (0: no age rule)' },
      'retain-bytes': { type: 'number', default: 0, env: 'LR_RETAIN_BYTES', describe: 'Log retention: also keep the newest entries up to this many bytes on disk (0: no bytes rule)' },
      'slot-max-lag-entries': { type: 'number', default: 10_000_000, env: 'LR_SLOT_MAX_LAG_ENTRIES', describe: 'Retention cap: the log stops waiting for a follower this many entries behind (it gets a snapshot later)' },
      'slot-max-lag-bytes': { type: 'number', default: 1024 ** 3, env: 'LR_SLOT_MAX_LAG_BYTES', describe: 'Retention cap in bytes of log on disk (0: no bytes cap)' },
      'trim-interval-ms': { type: 'number', default: 1_000, env: 'LR_TRIM_INTERVAL_MS', describe: 'How often the log is trimmed' },
      'repair-log': { type: 'boolean', default: false, env: 'LR_REPAIR_LOG', describe: 'If a log entry is corrupt, drop the log from it on and start a new history (followers resync by snapshot) instead of refusing to start' },
      'ack-followers': { type: 'number', default: 0, env: 'LR_MASTER_ACK_FOLLOWERS', describe: 'Default for writes that do not say: answer once this many followers durably applied the write (0: once committed on the master)' },
      'ack-timeout-ms': { type: 'number', default: DEFAULT_ACK_TIMEOUT_MS, env: 'LR_MASTER_ACK_TIMEOUT_MS', describe: 'Default longest wait for those followers; on timeout the write stays committed and the answer says REPLICATION_TIMEOUT' },
      'min-followers': { type: 'number', default: 0, env: 'LR_MASTER_MIN_FOLLOWERS', describe: 'Refuse writes (NOT_ENOUGH_FOLLOWERS) while fewer than this many followers are connected with lag <= --min-followers-max-lag-ms (0: never refuse)' },
      'min-followers-max-lag-ms': { type: 'number', default: DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS, env: 'LR_MASTER_MIN_FOLLOWERS_MAX_LAG_MS', describe: 'Lag (and time since the last acknowledgement) above which a follower does not count for --min-followers' },
      'metrics-listen': { type: 'string', default: DEFAULT_METRICS_LISTEN, env: 'LR_MASTER_METRICS_LISTEN', describe: 'HTTP address of the Prometheus metrics (GET /metrics); port 0 picks a free port (logged, and in endpoint.json); "off" disables' },
      ...LOG_LEVEL_OPTION,
    },
  ), SERVER_SECURITY_OPTIONS).parse();

  const log = createLogger(NAME, argv['log-level'] as string);
  const stop = catchStopSignals(log); // before start-up: a signal meanwhile still closes the store
  const security = serverSecurityFromArgv(argv, log);
  const dataDir = (argv['data-dir'] as string | undefined) ?? masterDataDir(argv['data-root'] as string);
  checkDataDir(dataDir);
  const node = await startMaster({
    dataDir,
    listen: parseAddress(argv.listen, { allowPortZero: true }),
    sync: argv.sync as boolean,
    maxGroupEntries: parsePositiveInt(argv['max-group-entries'], '--max-group-entries'),
    heartbeatIntervalMs: parsePositiveInt(argv['heartbeat-interval-ms'], '--heartbeat-interval-ms'),
    retention: {
      retainEntries: BigInt(parsePositiveInt(argv['retain-entries'], '--retain-entries')),
      retainAgeMs: parseNonNegativeInt(argv['retain-age-ms'], '--retain-age-ms'),
      retainBytes: parseNonNegativeInt(argv['retain-bytes'], '--retain-bytes'),
      slotMaxLagEntries: BigInt(parsePositiveInt(argv['slot-max-lag-entries'], '--slot-max-lag-entries')),
      slotMaxLagBytes: parseNonNegativeInt(argv['slot-max-lag-bytes'], '--slot-max-lag-bytes'),
      trimIntervalMs: parsePositiveInt(argv['trim-interval-ms'], '--trim-interval-ms'),
    },
    repairLog: argv['repair-log'] as boolean,
    ack: {
      followers: parseNonNegativeInt(argv['ack-followers'], '--ack-followers', MAX_FOLLOWER_COUNT),
      timeoutMs: parsePositiveInt(argv['ack-timeout-ms'], '--ack-timeout-ms'),
    },
    gate: {
      minFollowers: parseNonNegativeInt(argv['min-followers'], '--min-followers', MAX_FOLLOWER_COUNT),
      maxLagMs: parsePositiveInt(argv['min-followers-max-lag-ms'], '--min-followers-max-lag-ms'),
    },
    metricsListen: parseMetricsListen(argv['metrics-listen']),
    log,
    security,
  });
  warnIfExposed(NAME, node.address, security, log);
  let fatal = false;
  await Promise.race([
    stop.whenStopped(() => node.close()),
    node.failed.then(async (err) => {
      fatal = true;
      log.fatal({ code: err.code }, 'stopping after a store failure; restart to recover from the store');
      await node.close();
    }),
  ]);
  return fatal ? ExitCode.STORE : ExitCode.OK;
});
