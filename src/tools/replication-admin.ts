#!/usr/bin/env node
import type { Argv } from 'yargs';
import { addOptions, DATA_ROOT_OPTION } from '../common/options.js';
import { createLogger } from '../common/logger.js';
import { logDir } from '../storage/level-master-store.js';
import { upgradeStore } from '../storage/upgrade-store.js';
import { checkArgs, cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, masterDataDir, parseFollowerId, parsePath, parsePositiveInt } from '../common/config.js';
import { dropSlotCommand } from './drop-slot.js';
import { MASTER_ADDRESSES_OPTION } from './master-finder.js';
import { promoteCommand, switchoverCommand } from './role-admin.js';
import { chooseEtcdOrMaster, CLIENT_ETCD_OPTIONS } from './etcd-discovery.js';
import { flagsGiven } from '../common/options.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';

const NAME = 'replication-admin';

/**
 * Operator actions on a running master, one subcommand each (like pg_ctl or redis-cli's
 * admin commands): thin, parse / call / print. Subcommands share the master, security,
 * timeout and --json options.
 */
await runCli(NAME, async () => {
  let run: ((argv: Record<string, unknown>) => Promise<number | void>) | undefined;
  const argv = await withSecurityOptions(addOptions(
    cli(NAME, '$0 <command> [options]\n\nOperator actions on the master.')
      .command(
        'drop-slot <id>',
        'Drop follower <id>\'s replication slot: the master forgets the follower and its log stops waiting for it',
        (y: Argv) =>
          checkArgs(
            addOptions(y.positional('id', { type: 'string', describe: 'Follower id' }), {
              force: { type: 'boolean', default: false, env: 'LR_DROP_SLOT_FORCE', describe: 'Drop it even while the follower is connected (its stream is ended; a running follower subscribes again and gets a new slot)' },
            }),
            (a) => {
              a.id = parseFollowerId(a.id);
            },
          ),
        () => {
          run = (argv) => dropSlotCommand(withEtcd(argv), NAME);
        },
      )
      .command(
        'upgrade-store',
        "Convert a stopped master's store from the previous layout (log inside LevelDB) to log segment files; keeps a backup of the store",
        (y: Argv) =>
          addOptions(y, {
            ...DATA_ROOT_OPTION,
            'data-dir': { type: 'string', env: 'LR_MASTER_DATA_DIR', describe: 'Master data directory  (default: <data-root>/master)', parse: parsePath },
          }),
        () => {
          run = (argv) => upgrade(withoutEtcd(argv, 'upgrade-store', 'it works on a stopped master\'s data directory'));
        },
      )
      .command(
        'promote <id>',
        'Make follower <id> the master of a new epoch (the master is gone); refused while the master is up or another follower has applied more, unless --force',
        (y: Argv) =>
          checkArgs(
            addOptions(y.positional('id', { type: 'string', describe: 'Follower id' }), {
              nodes: { type: 'string', default: '', env: 'LR_NODES', describe: 'Comma list of the nodes\' addresses (followers\' read addresses, and the old master\'s): their positions are compared, and each is told to follow the new master' },
              force: { type: 'boolean', default: false, env: 'LR_PROMOTE_FORCE', describe: 'Promote even if the master answers or another follower has applied more (their extra writes end in rollback files)' },
            }),
            (a) => {
              a.id = parseFollowerId(a.id);
            },
          ),
        () => {
          run = (argv) => promoteCommand(withoutEtcd(argv, 'promote', 'with etcd the leader is elected there: use switchover --etcd'));
        },
      )
      .command(
        'switchover',
        'Hand the master role to follower --to without losing a write: pause writes, wait for it, promote it, make the master follow it (with --etcd: hand the leader lease to it through etcd)',
        (y: Argv) =>
          checkArgs(
            addOptions(y, {
              to: { type: 'string', env: 'LR_SWITCHOVER_TO', describe: 'The follower id that becomes the master' },
              nodes: { type: 'string', default: '', env: 'LR_NODES', describe: 'Comma list of the followers\' read addresses (the new master is found among them; the others are told to follow it); not with --etcd, which lists the nodes' },
            }),
            (a) => {
              a.to = parseFollowerId(a.to);
            },
          ),
        () => {
          run = (argv) => switchoverCommand(withEtcd(argv, ['nodes']));
        },
      )
      .demandCommand(1, 'name a command: drop-slot, upgrade-store, promote, switchover'),
    {
      master: {
        ...MASTER_ADDRESSES_OPTION.master,
        describe:
          'drop-slot, switchover: address of the master, or of several nodes comma-separated (host:port,host:port,...): each is asked for its status and the one that answers as master at the newest epoch is used',
      },
      ...CLIENT_ETCD_OPTIONS,
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: 'Deadline of the call (switchover: of the wait for the follower to catch up)', parse: parsePositiveInt },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print the answer as JSON' },
    },
  ), CLIENT_SECURITY_OPTIONS).parseAsync();
  return run?.(argv as Record<string, unknown>);
});

/**
 * drop-slot and switchover find the master through --etcd or --master (etcd-discovery.ts);
 * options that name nodes by address make no sense beside etcd, which lists them.
 */
function withEtcd(argv: Record<string, unknown>, notWithEtcd: string[] = []): Record<string, unknown> {
  chooseEtcdOrMaster(argv);
  const clash = argv.etcd !== undefined ? flagsGiven(argv, notWithEtcd) : [];
  if (clash.length > 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${clash.join(' and ')} ${clash.length > 1 ? 'do' : 'does'} not apply with --etcd: etcd lists the nodes (see --help)`);
  return argv;
}

/** promote and upgrade-store do not use etcd: --etcd as a flag is refused rather than ignored (from the environment it is ignored). */
function withoutEtcd(argv: Record<string, unknown>, command: string, why: string): Record<string, unknown> {
  if (flagsGiven(argv, ['etcd', 'cluster']).length > 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${command} does not take --etcd or --cluster: ${why} (see --help)`);
  return argv;
}

/** Offline: converts the master store of --data-dir (the master must be stopped: its lock says DATA_DIR_LOCKED otherwise). */
async function upgrade(argv: Record<string, unknown>): Promise<void> {
  const dataDir = (argv['data-dir'] as string | undefined) ?? masterDataDir(argv['data-root'] as string);
  const log = createLogger(NAME, 'warn', 'pretty');
  const r = await upgradeStore(dataDir, logDir(dataDir), log);
  if (argv.json) {
    process.stdout.write(JSON.stringify({ dataDir, upgraded: r.upgraded, entries: r.entries.toString(), lastSeq: r.lastSeq.toString(), backupDir: r.backupDir ?? null }) + '\n');
    return;
  }
  process.stdout.write(
    r.upgraded
      ? `upgraded the store in ${dataDir}: ${r.entries} log entries moved to segment files (lastSeq ${r.lastSeq}); the previous store is kept in ${r.backupDir}\n`
      : `the store in ${dataDir} already has the current layout; nothing to do\n`,
  );
}
