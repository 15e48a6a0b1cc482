#!/usr/bin/env node
import { addOptions, LOG_SEGMENT_OPTION, DATA_ROOT_OPTION, LOG_OPTIONS } from '../common/options.js';
import { cli, logStartFailure, runCli } from './cli.js';
import { checkDataDir } from '../common/data-dir.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, SERVER_SECURITY_OPTIONS, serverSecurityFromArgv, warnIfExposed, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_MASTER_ADDRESS, DEFAULT_METRICS_LISTEN, masterDataDir, parseAddress, parseFollowerId, parseMetricsListen, parsePath, parsePositiveInt } from '../common/config.js';
import { ExitCode } from './exit-codes.js';
import { catchStopSignals } from '../common/lifecycle.js';
import { createLogger, type LogFormat } from '../common/logger.js';
import { NodeRunner } from '../node/node-runner.js';
import { exitOnceClosed, FAILOVER_OPTIONS, nodeFailover } from './failover-options.js';
import { describedAs, FOLLOWER_ROLE_OPTIONS, followerRoleSettings, MASTER_ROLE_OPTIONS, masterRoleSettings } from './role-options.js';

const NAME = 'master-server';

await runCli(NAME, async () => {
  const argv = await withSecurityOptions(addOptions(
    cli(
      NAME,
      [
        '$0 [options]',
        '',
        'Runs the master: owns the master store, takes writes, and streams its log to followers.',
        'With --node-id, a master deposed by a promoted follower rejoins as follower <node-id> on the same',
        'address and data directory; --heartbeat-timeout-ms and --progress-interval-ms apply from then on',
        '(--sync, --retain-entries, --log-segment-bytes and --metrics-listen apply in both roles).',
      ].join('\n'),
    ),
    {
      'node-id': { type: 'string', default: '', env: 'LR_NODE_ID', describe: 'This node\'s id (a positive integer, unique among the master and its followers): once deposed by a promoted follower, the node rejoins as follower <node-id>. Empty: none (a deposed master then only stops taking writes)', parse: (v) => (v === '' ? '' : parseFollowerId(v)) },
      listen: { type: 'string', default: DEFAULT_MASTER_ADDRESS, env: 'LR_MASTER_LISTEN', describe: 'gRPC address to serve on (host:port; port 0 picks a free port)', parse: (v) => parseAddress(v, { allowPortZero: true }) },
      ...DATA_ROOT_OPTION,
      'data-dir': { type: 'string', env: 'LR_MASTER_DATA_DIR', describe: 'Master data directory  (default: <data-root>/master)', parse: parsePath },
      sync: { type: 'boolean', default: true, env: 'LR_MASTER_SYNC', describe: 'fsync each group commit before acknowledging it; --no-sync is faster but a power loss can lose acknowledged writes' },
      'retain-entries': { type: 'number', default: 100_000, env: 'LR_RETAIN_ENTRIES', describe: 'Log retention: always keep at least the newest this many entries', parse: parsePositiveInt },
      ...LOG_SEGMENT_OPTION,
      'repair-log': { type: 'boolean', default: false, env: 'LR_REPAIR_LOG', describe: 'If a log entry is corrupt, drop the log from it on and start a new history (followers resync by snapshot) instead of refusing to start' },
      ...MASTER_ROLE_OPTIONS,
      'metrics-listen': { type: 'string', default: DEFAULT_METRICS_LISTEN, env: 'LR_MASTER_METRICS_LISTEN', describe: 'HTTP address of the Prometheus metrics (GET /metrics); port 0 picks a free port (logged, and in endpoint.json); "off" disables', parse: parseMetricsListen },
      // Unused until the node is deposed; declared here so it then follows with the operator's settings.
      ...describedAs(FOLLOWER_ROLE_OPTIONS, 'used once this master is deposed and rejoins as follower <node-id> (needs --node-id)'),
      ...FAILOVER_OPTIONS,
      ...LOG_OPTIONS,
    },
  ), { ...SERVER_SECURITY_OPTIONS, ...CLIENT_SECURITY_OPTIONS }).parse();

  const log = createLogger(NAME, argv['log-level'] as string, argv['log-format'] as LogFormat);
  const stop = catchStopSignals(log); // before start-up: a signal meanwhile still closes the store
  const { node, security, failover } = await logStartFailure(log, async () => {
    const security = serverSecurityFromArgv(argv, log);
    const dataDir = (argv['data-dir'] as string | undefined) ?? masterDataDir(argv['data-root'] as string);
    checkDataDir(dataDir);
    const nodeId = argv['node-id'] === '' ? undefined : (argv['node-id'] as number);
    const args = argv as Record<string, unknown>;
    const master = {
      dataDir,
      listen: argv.listen as string,
      sync: argv.sync as boolean,
      ...masterRoleSettings(args, argv['retain-entries'] as number),
      repairLog: argv['repair-log'] as boolean,
      maxSegmentBytes: argv['log-segment-bytes'] as number,
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
      ...followerRoleSettings(args),
      metricsListen: argv['metrics-listen'] as string | undefined,
      log,
      security,
      masterSecurity: clientSecurityFromArgv(argv),
    };
    // With --etcd the master role takes no write until etcd elects it (or it follows the leader etcd names).
    const failover = await nodeFailover(args, nodeId, log);
    try {
      const node = await NodeRunner.start({ nodeId, master, follower, clientSecurity: clientSecurityFromArgv(argv), log, ...failover?.runner }, { kind: 'master' });
      await failover?.attach(node);
      return { node, security, failover };
    } catch (err) {
      await failover?.close();
      throw err;
    }
  });
  warnIfExposed(NAME, node.address, security, log);
  let fatal = false;
  await Promise.race([
    stop.whenStopped(async () => {
      await failover?.close(); // resigns the lease first: a successor need not wait out the TTL
      await node.close();
    }),
    node.failed.then(async (err) => {
      fatal = true;
      log.fatal({ code: (err as { code?: string })?.code }, 'stopping after a store failure; restart to recover from the store');
      await failover?.close();
      await node.close();
    }),
  ]);
  if (failover) exitOnceClosed();
  return fatal ? ExitCode.STORE : ExitCode.OK;
});
