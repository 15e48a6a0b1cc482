#!/usr/bin/env node
import type { Argv } from 'yargs';
import { addOptions, MASTER_OPTION } from '../common/options.js';
import { checkArgs, cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, parseFollowerId, parsePositiveInt } from '../common/config.js';
import type { DropSlotResponse__Output } from '../wire/generated/levelreplicator/v1/DropSlotResponse.js';
import { callUnary, masterClient } from '../wire/rpc-client.js';

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
          run = dropSlot;
        },
      )
      .demandCommand(1, 'name a command: drop-slot'),
    {
      ...MASTER_OPTION,
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: 'Deadline of the call', parse: parsePositiveInt },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print the answer as JSON' },
    },
  ), CLIENT_SECURITY_OPTIONS).parseAsync();
  return run?.(argv as Record<string, unknown>);
});

async function dropSlot(argv: Record<string, unknown>): Promise<void> {
  const address = argv.master as string;
  const id = argv.id as number;
  const client = masterClient(address, clientSecurityFromArgv(argv));
  try {
    const res = await callUnary<DropSlotResponse__Output>(
      (o, cb) => client.DropSlot({ followerId: id, force: argv.force as boolean }, o, cb),
      argv['timeout-ms'] as number,
      { role: 'master', address },
    );
    if (argv.json) {
      process.stdout.write(JSON.stringify({ followerId: id, appliedSeq: res.appliedSeq, wasConnected: res.wasConnected, slotLost: res.slotLost, firstSeq: res.firstSeq }) + '\n');
      return;
    }
    process.stdout.write(
      `dropped the replication slot of follower ${id} (it had applied up to seq ${res.appliedSeq}${res.slotLost ? '; the slot was already lost' : ''}${res.wasConnected ? '; its stream was ended' : ''}); ` +
        `the log no longer waits for it from the next retention pass (firstSeq is ${res.firstSeq})\n`,
    );
  } finally {
    client.close();
  }
}
