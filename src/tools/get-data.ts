#!/usr/bin/env node
import { addOptions, DATA_ROOT_OPTION, flagsGiven, optionSource } from '../common/options.js';
import { checkArgs, cli, missingArguments, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, parseAddress, parseFollowerId, parsePath, parsePositiveInt } from '../common/config.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { parseSeq } from '../wire/seq.js';
import { ExitCode } from './exit-codes.js';
import { checkKey } from '../wire/write-validation.js';
import { addressRef, nodeRef, readKey } from './node-access.js';

const NAME = 'get-data';

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(NAME, [
      '$0 <id> <key> [options]',
      '$0 --address <host:port> <key> [options]',
      '',
      'Prints follower <id>\'s value for <key> (exit 0), or says it is not found (exit 1).',
      'Asks the running follower over its read service; reads its store directly when it is stopped.',
      'With --address it asks the node serving reads at that address instead (any host; no store fallback).',
      'With --min-seq S (the seq push-data printed) it waits until the follower has applied S: read-your-writes.',
    ].join('\n'))
      .command('$0 [id] [key]', false, (y) =>
        y.positional('id', { type: 'string', describe: 'Follower id (left out with --address)' }).positional('key', { type: 'string', describe: 'Key to read (UTF-8)' }),
      ),
    {
      ...DATA_ROOT_OPTION,
      'data-dir': { type: 'string', env: 'LR_FOLLOWER_DATA_DIR', describe: 'The follower\'s data directory  (default: <data-root>/follower-<id>)', parse: parsePath },
      address: { type: 'string', env: 'LR_NODE_ADDRESS', describe: 'Read from the node serving reads at this host:port (a follower\'s --listen), instead of finding follower <id> through its data directory', parse: (v) => parseAddress(v) },
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: 'Deadline of the read call (and so of the --min-seq wait)', parse: parsePositiveInt },
      'min-seq': { type: 'string', default: '0', env: 'LR_MIN_SEQ', describe: 'Answer only once the follower has applied this seq, waiting up to --timeout-ms; else fail with SEQ_NOT_APPLIED (exit 3). 0: do not wait', parse: parseSeq },
      seq: { type: 'boolean', default: false, env: 'LR_SHOW_SEQ', describe: 'Also print the follower\'s applied seq the answer was read at (on stderr)' },
    },
  ), CLIENT_SECURITY_OPTIONS), checkCommandLine).parse();
  const followerId = argv.id as number | undefined;
  const address = argv.address as string | undefined;
  const node = followerId === undefined ? addressRef(address!) : nodeRef(followerId, argv['data-root'] as string, argv['data-dir'] as string | undefined);
  const res = await readKey(node, keyOf(argv), argv['timeout-ms'] as number, clientSecurityFromArgv(argv), argv['min-seq'] as bigint);
  if (argv.seq) process.stderr.write(`appliedSeq=${res.seq} via=${res.via}\n`);
  if (res.value === undefined) {
    const where = followerId === undefined ? `at ${address}` : `on follower ${followerId}`;
    process.stderr.write(`${NAME}: key ${JSON.stringify(String(argv.key))} not found ${where}\n`);
    return ExitCode.NOT_FOUND;
  }
  process.stdout.write(Buffer.concat([res.value, Buffer.from('\n')]));
  return ExitCode.OK;
});

/**
 * `<id> <key>`, or `<key>` alone with an address. An address from the environment or the
 * config file gives way to an id on the command line; a --address flag with an id is refused.
 */
function checkCommandLine(a: Record<string, unknown>): void {
  const given = [a.id, a.key].filter((v) => v !== undefined).map(String);
  const byAddress = a.address !== undefined && (given.length === 1 || optionSource(a, 'address') === 'flag');
  if (byAddress) {
    if (given.length === 0) throw missingArguments(['<key>']);
    if (given.length === 2) throw usage('with --address, give only <key>: the node at that address answers');
    [a.id, a.key] = [undefined, given[0]];
    const ignored = flagsGiven(a, ['data-root', 'data-dir']);
    if (ignored.length > 0) throw usage(`${ignored.join(' and ')} ${ignored.length > 1 ? 'do' : 'does'} not apply with --address`);
  } else {
    if (given.length < 2) throw missingArguments(['<id>', '<key>'].slice(given.length));
    a.id = parseFollowerId(a.id);
  }
  checkKey(keyOf(a));
}

function usage(message: string): ReplicatorError {
  return new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${message} (see --help)`);
}

function keyOf(argv: Record<string, unknown>): Buffer {
  return Buffer.from(String(argv.key ?? ''), 'utf8');
}
