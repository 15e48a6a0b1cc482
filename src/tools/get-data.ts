#!/usr/bin/env node
import { addOptions, DATA_ROOT_OPTION } from '../common/options.js';
import { checkArgs, cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, parseFollowerId, parsePath, parsePositiveInt } from '../common/config.js';
import { parseSeq } from '../wire/seq.js';
import { ExitCode } from './exit-codes.js';
import { checkKey } from '../wire/write-validation.js';
import { nodeRef, readKey } from './node-access.js';

const NAME = 'get-data';

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(NAME, '$0 <id> <key> [options]\n\nPrints follower <id>\'s value for <key> (exit 0), or says it is not found (exit 1).\nAsks the running follower over its read service; reads its store directly when it is stopped.\nWith --min-seq S (the seq push-data printed) it waits until the follower has applied S: read-your-writes.')
      .command('$0 <id> <key>', false, (y) =>
        y.positional('id', { type: 'string', describe: 'Follower id' }).positional('key', { type: 'string', describe: 'Key to read (UTF-8)' }),
      ),
    {
      ...DATA_ROOT_OPTION,
      'data-dir': { type: 'string', env: 'LR_FOLLOWER_DATA_DIR', describe: 'The follower\'s data directory  (default: <data-root>/follower-<id>)', parse: parsePath },
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: 'Deadline of the read call (and so of the --min-seq wait)', parse: parsePositiveInt },
      'min-seq': { type: 'string', default: '0', env: 'LR_MIN_SEQ', describe: 'Answer only once the follower has applied this seq, waiting up to --timeout-ms; else fail with SEQ_NOT_APPLIED (exit 3). 0: do not wait', parse: parseSeq },
      seq: { type: 'boolean', default: false, env: 'LR_SHOW_SEQ', describe: 'Also print the follower\'s applied seq the answer was read at (on stderr)' },
    },
  ), CLIENT_SECURITY_OPTIONS), (a) => {
    a.id = parseFollowerId(a.id);
    checkKey(keyOf(a));
  }).parse();
  const followerId = argv.id as number;
  const node = nodeRef(followerId, argv['data-root'] as string, argv['data-dir'] as string | undefined);
  const res = await readKey(node, keyOf(argv), argv['timeout-ms'] as number, clientSecurityFromArgv(argv), argv['min-seq'] as bigint);
  if (argv.seq) process.stderr.write(`appliedSeq=${res.seq} via=${res.via}\n`);
  if (res.value === undefined) {
    process.stderr.write(`${NAME}: key ${JSON.stringify(String(argv.key))} not found on follower ${followerId}\n`);
    return ExitCode.NOT_FOUND;
  }
  process.stdout.write(Buffer.concat([res.value, Buffer.from('\n')]));
  return ExitCode.OK;
});

function keyOf(argv: Record<string, unknown>): Buffer {
  return Buffer.from(String(argv.key ?? ''), 'utf8');
}
