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
import { DEFAULT_FOLLOWER_LISTEN, DEFAULT_METRICS_LISTEN, followerDataDir, parseAddress, parseFollowerId, parseMetricsListen, parsePath, parsePositiveInt } from '../common/config.js';
import { catchStopSignals } from '../common/lifecycle.js';
import { createLogger, type LogFormat } from '../common/logger.js';
import { NodeRunner } from '../node/node-runner.js';
import { exitOnceClosed, FAILOVER_OPTIONS, nodeFailover } from './failover-options.js';
import { describedAs, FOLLOWER_ROLE_OPTIONS, followerRoleSettings, MASTER_ROLE_OPTIONS, masterRoleSettings } from './role-options.js';

const NAME = 'follower-client';
/** The read service is a server (TLS files, client auth, token table); toward the master it is a client. */
const FOLLOWER_SECURITY_OPTIONS = { ...SERVER_SECURITY_OPTIONS, ...CLIENT_SECURITY_OPTIONS };

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(
      NAME,
      [
        '$0 <id> [options]',
        '',
        'Runs follower <id>: keeps its own store in step with the master and serves reads from it.',
        'Promoted (replication-admin promote or switchover), it becomes the master on the same address and',
        'data directory: the master options (--ack-followers, --retain-age-ms, --max-group-entries, ...) take',
        'effect then; --sync, --retain-entries, --log-segment-bytes and --metrics-listen apply in both roles.',
      ].join('\n'),
    ).command(
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
      ...FOLLOWER_ROLE_OPTIONS,
      'metrics-listen': { type: 'string', default: DEFAULT_METRICS_LISTEN, env: 'LR_FOLLOWER_METRICS_LISTEN', describe: 'HTTP address of the Prometheus metrics (GET /metrics); port 0 picks a free port (logged, and in endpoint.json); "off" disables', parse: parseMetricsListen },
      'retain-entries': { type: 'number', default: 100_000, env: 'LR_FOLLOWER_RETAIN_ENTRIES', describe: "The follower's own log keeps at least the newest this many applied entries (older whole segments are deleted); once promoted, the master's --retain-entries", parse: parsePositiveInt },
      ...LOG_SEGMENT_OPTION,
      'audit-file': { type: 'string', default: '', env: 'LR_FOLLOWER_AUDIT_FILE', describe: 'Audit mode: append a line to this file for every store open, applied seq range and installed snapshot, to prove nothing was applied twice or skipped (empty: off)' },
      // Unused until the node is promoted (except the heartbeat interval: chained followers of this one get it now).
      ...describedAs(MASTER_ROLE_OPTIONS, 'takes effect once this follower is promoted', {
        'heartbeat-interval-ms': 'Idle time after which a heartbeat is sent on a follower stream: now on those of followers chained to this one (their --upstream), on every follower stream once this one is promoted',
      }),
      ...FAILOVER_OPTIONS,
      ...LOG_OPTIONS,
    },
  ), FOLLOWER_SECURITY_OPTIONS), (a) => {
    a.id = parseFollowerId(a.id);
  }).parse();
  const followerId = argv.id as number;
  const log = createLogger(NAME, argv['log-level'] as string, argv['log-format'] as LogFormat).child({ followerId });
  const stop = catchStopSignals(log); // before start-up: a signal meanwhile still closes the store
  const { node, security, failover } = await logStartFailure(log, async () => {
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
      ...followerRoleSettings(argv as Record<string, unknown>),
      metricsListen: argv['metrics-listen'] as string | undefined,
      auditFile: (argv['audit-file'] as string) || undefined,
      log,
      security,
      masterSecurity,
    };
    // Once promoted (replication-admin promote or switchover), the same directory and
    // address serve as the master, with the master options given to this command.
    const master = {
      dataDir,
      listen: argv.listen as string,
      sync: argv.sync as boolean,
      ...masterRoleSettings(argv as Record<string, unknown>, argv['retain-entries'] as number),
      // A promotion never cuts the log: --repair-log is an operator's start-up decision, made on master-server.
      repairLog: false,
      maxSegmentBytes: argv['log-segment-bytes'] as number,
      metricsListen: argv['metrics-listen'] as string | undefined,
      log,
      security,
    };
    // With --etcd: the leader etcd names is the master to follow, once one leads.
    const failover = await nodeFailover(argv as Record<string, unknown>, followerId, log);
    const masterAddress = failover?.leaderAddress ?? (argv.master as string);
    try {
      const node = await NodeRunner.start({ nodeId: followerId, master, follower, clientSecurity: masterSecurity, log, ...failover?.runner }, {
        kind: 'follower',
        upstream: (argv.upstream as string) || masterAddress,
        masterAddress,
      });
      await failover?.attach(node);
      return { node, security, failover };
    } catch (err) {
      await failover?.close();
      throw err;
    }
  });
  warnIfExposed(NAME, node.address, security, log);
  const close = async () => {
    await failover?.close(); // resigns the lease first, if this node leads
    await node.close();
  };
  await Promise.race([stop.whenStopped(close), node.failed.then(close)]);
  if (failover) exitOnceClosed();
});
