#!/usr/bin/env node
import { addOptions } from '../common/options.js';
import { cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_DATA_ROOT, parseFollowerId, parsePositiveInt } from '../common/config.js';
import { digestNode, nodeRef } from './node-access.js';

const NAME = 'store-digest';

await runCli(NAME, async () => {
  const argv = await withSecurityOptions(addOptions(
    cli(NAME, '$0 <node...> [options]\n\nPrints a sha256 digest over every key and value of each node (`master` or a follower id),\nwith the seq it was taken at. Equal digests at equal seqs prove equal stores.\nWorks on running nodes (over their read service) and on stopped ones (from the store).')
      .command('$0 <node...>', false, (y) => y.positional('node', { type: 'string', array: true, describe: '`master` or a follower id' })),
    {
      'data-root': { type: 'string', default: DEFAULT_DATA_ROOT, env: 'LR_DATA_ROOT', describe: 'Directory holding every node\'s data directory' },
      'timeout-ms': { type: 'number', default: 120_000, env: 'LR_DIGEST_TIMEOUT_MS', describe: 'Deadline of each digest call (a digest reads the whole store)' },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print one JSON object per node' },
    },
  ), CLIENT_SECURITY_OPTIONS).parse();
  const timeoutMs = parsePositiveInt(argv['timeout-ms'], '--timeout-ms');
  const security = clientSecurityFromArgv(argv);
  const names = (argv.node as string[]).map((n) => (n === 'master' ? ('master' as const) : parseFollowerId(n)));
  for (const name of names) {
    const d = await digestNode(nodeRef(name, argv['data-root'] as string), timeoutMs, security);
    if (argv.json) {
      process.stdout.write(JSON.stringify({ node: String(name), digest: d.digest, seq: d.seq.toString(), keys: d.keys.toString(), via: d.via }) + '\n');
    } else {
      process.stdout.write(`${String(name).padEnd(8)} ${d.digest}  seq=${d.seq} keys=${d.keys}\n`);
    }
  }
});
