#!/usr/bin/env node
import { addOptions, cli, LOG_LEVEL_OPTION, runCli } from '../common/cli.js';
import { DEFAULT_DATA_ROOT, DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_MASTER_ADDRESS, masterDataDir, parseAddress, parsePositiveInt } from '../common/config.js';
import { ExitCode } from '../common/errors.js';
import { untilSignal } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { startMaster } from '../master/master-node.js';

const NAME = 'master-server';

await runCli(NAME, async () => {
  const argv = await addOptions(
    cli(NAME, '$0 [options]\n\nRuns the master: owns the master store, takes writes, and streams its log to followers.'),
    {
      listen: { type: 'string', default: DEFAULT_MASTER_ADDRESS, env: 'LR_MASTER_LISTEN', describe: 'gRPC address to serve on (host:port; port 0 picks a free port)' },
      'data-root': { type: 'string', default: DEFAULT_DATA_ROOT, env: 'LR_DATA_ROOT', describe: 'Directory holding every node\'s data directory' },
      'data-dir': { type: 'string', env: 'LR_MASTER_DATA_DIR', describe: 'Master data directory  (default: <data-root>/master)' },
      sync: { type: 'boolean', default: true, env: 'LR_MASTER_SYNC', describe: 'fsync each group commit before acknowledging it; --no-sync is faster but a power loss can lose acknowledged writes' },
      'max-group-entries': { type: 'number', default: 10_000, env: 'LR_MAX_GROUP_ENTRIES', describe: 'Most writes (seqs) committed together in one batch and one fsync' },
      'heartbeat-interval-ms': { type: 'number', default: DEFAULT_HEARTBEAT_INTERVAL_MS, env: 'LR_HEARTBEAT_INTERVAL_MS', describe: 'Idle time after which a heartbeat is sent on each follower stream' },
      ...LOG_LEVEL_OPTION,
    },
  ).parse();

  const log = createLogger(NAME, argv['log-level'] as string);
  const node = await startMaster({
    dataDir: (argv['data-dir'] as string | undefined) ?? masterDataDir(argv['data-root'] as string),
    listen: parseAddress(argv.listen, { allowPortZero: true }),
    sync: argv.sync as boolean,
    maxGroupEntries: parsePositiveInt(argv['max-group-entries'], '--max-group-entries'),
    heartbeatIntervalMs: parsePositiveInt(argv['heartbeat-interval-ms'], '--heartbeat-interval-ms'),
    log,
  });
  let fatal = false;
  await Promise.race([
    untilSignal(log, () => node.close()),
    node.failed.then(async (err) => {
      fatal = true;
      log.fatal({ code: err.code }, 'stopping after a store failure; restart to recover from the store');
      await node.close();
    }),
  ]);
  return fatal ? ExitCode.STORE : ExitCode.OK;
});
