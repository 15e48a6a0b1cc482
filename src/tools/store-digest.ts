#!/usr/bin/env node
import { addOptions, DATA_ROOT_OPTION } from '../common/options.js';
import { checkArgs, cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { parseFollowerId, parsePositiveInt } from '../common/config.js';
import { digestNode, nodeRef } from './node-access.js';

const NAME = 'store-digest';

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(NAME, '$0 <node...> [options]\n\nPrints a sha256 digest over every key and value of each node (`master` or a follower id),\nwith the seq it was taken at. Equal digests at equal seqs prove equal stores.\nWorks on running nodes (over their read service) and on stopped ones (from the store).')
      .command('$0 <node...>', false, (y) => y.positional('node', { type: 'string', array: true, describe: '`master` or a follower id' })),
    {
      ...DATA_ROOT_OPTION,
      'timeout-ms': { type: 'number', default: 120_000, env: 'LR_DIGEST_TIMEOUT_MS', describe: 'Deadline of each digest call (a digest reads the whole store)', parse: parsePositiveInt },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print one JSON object per node' },
    },
  ), CLIENT_SECURITY_OPTIONS), (a) => {
    a.node = (a.node as string[]).map((n) => (n === 'master' ? ('master' as const) : parseFollowerId(n)));
  }).parse();
  const security = clientSecurityFromArgv(argv);
  for (const name of argv.node as ('master' | number)[]) {
    const d = await digestNode(nodeRef(name, argv['data-root'] as string), argv['timeout-ms'] as number, security);
    if (argv.json) {
      process.stdout.write(JSON.stringify({ node: String(name), digest: d.digest, seq: d.seq.toString(), keys: d.keys.toString(), via: d.via }) + '\n');
    } else {
      process.stdout.write(`${String(name).padEnd(8)} ${d.digest}  seq=${d.seq} keys=${d.keys}\n`);
    }
  }
});
