#!/usr/bin/env node
import { addOptions, DATA_ROOT_OPTION, flagsGiven, optionSource } from '../common/options.js';
import { checkArgs, cli, missingArguments, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { parseAddress, parseFollowerId, parsePositiveInt } from '../common/config.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { parseMasterAddresses, STATUS_PROBE_TIMEOUT_MS } from './master-finder.js';
import { locateMaster } from './master-locator.js';
import { chooseEtcdOrMaster, CLIENT_ETCD_OPTIONS, discoveryFromArgv, locateMasterViaEtcd } from './etcd-discovery.js';
import { addressRef, digestNode, nodeRef, type NodeRef } from './node-access.js';

const NAME = 'store-digest';

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(NAME, [
      '$0 <node...> [options]',
      '$0 --address <host:port>[,<host:port>...] [<node...>] [options]',
      '$0 --master <host:port>[,<host:port>...] [<node...>] [--address ...] [options]',
      '$0 --etcd <endpoints> --cluster <name> [<node...>] [--address ...] [options]',
      '',
      'Prints a sha256 digest over every key and value of each node (`master` or a follower id),',
      'with the seq it was taken at. Equal digests at equal seqs prove equal stores.',
      'Works on running nodes (over their read service) and on stopped ones (from the store);',
      'a node given by --address is asked over the network, wherever it runs.',
      'With --master it also digests the current master, found among those addresses by their status',
      '(the master at the newest epoch), labelled master@<its address>.',
      'With --etcd it digests the master etcd names (master@<address>) and every other node etcd lists',
      '(node-<id>@<address>).',
    ].join('\n'))
      .command('$0 [node...]', false, (y) => y.positional('node', { type: 'string', array: true, describe: '`master` or a follower id' })),
    {
      ...DATA_ROOT_OPTION,
      address: { type: 'string', env: 'LR_NODE_ADDRESS', describe: 'Also digest the nodes serving reads at these host:port addresses, comma-separated (a master\'s or a follower\'s --listen)', parse: parseAddresses },
      master: {
        type: 'string',
        env: 'LR_MASTER_ADDRESS',
        describe:
          'Also digest the current master: the node at this host:port, or of several comma-separated the one that answers as master at the newest epoch; a follower or deposed master given alone is followed once to the master it names  (default: none; from LR_MASTER_ADDRESS or --config only when no <node> or --address is given)',
        parse: parseMasterAddresses,
      },
      ...CLIENT_ETCD_OPTIONS,
      'timeout-ms': { type: 'number', default: 120_000, env: 'LR_DIGEST_TIMEOUT_MS', describe: `Deadline of each digest call (a digest reads the whole store); each status asked while finding the master: at most ${STATUS_PROBE_TIMEOUT_MS} ms`, parse: parsePositiveInt },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print one JSON object per node' },
    },
  ), CLIENT_SECURITY_OPTIONS), (a) => {
    a.node = ((a.node as string[] | undefined) ?? []).map((n) => (n === 'master' ? ('master' as const) : parseFollowerId(n)));
    const addresses = (a.address as string[] | undefined) ?? [];
    chooseEtcdOrMaster(a);
    // A LR_MASTER_ADDRESS (or LR_ETCD) set for push-data must not add rows to `store-digest master 1`.
    const named = (a.node as unknown[]).length > 0 || addresses.length > 0;
    if (optionSource(a, 'master') !== 'flag' && named) a.master = undefined;
    if (optionSource(a, 'etcd') !== 'flag' && named) a.etcd = undefined;
    if ((a.node as unknown[]).length === 0) {
      if (addresses.length === 0 && a.master === undefined && a.etcd === undefined) throw missingArguments(['<node...>']);
      const ignored = flagsGiven(a, ['data-root']);
      if (ignored.length > 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, '--data-root applies only to nodes named as `master` or by id (see --help)');
    }
  }).parse();
  const security = clientSecurityFromArgv(argv);
  const timeoutMs = argv['timeout-ms'] as number;
  const nodes: [string, NodeRef][] = (argv.node as ('master' | number)[]).map((n): [string, NodeRef] => [String(n), nodeRef(n, argv['data-root'] as string)]);
  let masterAddress: string | undefined;
  const discovery = discoveryFromArgv(argv, timeoutMs);
  const members: [string, NodeRef][] = [];
  try {
    if (argv.master !== undefined || discovery) {
      const found = discovery ? await locateMasterViaEtcd(discovery, security, timeoutMs) : await locateMaster(argv.master as string[], security, timeoutMs);
      if (found.redirect) process.stderr.write(`${NAME}: ${found.redirect.reason}; digesting the master at ${found.address}\n`);
      masterAddress = found.address;
      nodes.push([`master@${found.address}`, addressRef(found.address, 'master')]);
    }
    // Every other node etcd lists (its member record), by id and address.
    for (const m of discovery ? await discovery.members() : []) if (m.address !== masterAddress) members.push([`node-${m.nodeId}@${m.address}`, addressRef(m.address)]);
  } finally {
    discovery?.close();
  }
  nodes.push(...members);
  // The master found (and the nodes etcd lists) are digested once, also when --address lists them too.
  for (const addr of (argv.address as string[] | undefined) ?? []) if (addr !== masterAddress && !members.some(([name]) => name.endsWith(`@${addr}`))) nodes.push([addr, addressRef(addr)]);
  for (const [name, node] of nodes) {
    const d = await digestNode(node, timeoutMs, security);
    if (argv.json) {
      process.stdout.write(JSON.stringify({ node: name, digest: d.digest, seq: d.seq.toString(), keys: d.keys.toString(), via: d.via }) + '\n');
    } else {
      process.stdout.write(`${name.padEnd(8)} ${d.digest}  seq=${d.seq} keys=${d.keys}\n`);
    }
  }
});

/** A comma-separated list of addresses (like every flag, a repeated --address takes its last value). */
function parseAddresses(raw: unknown): string[] {
  return String(raw).split(',').map((v) => v.trim()).filter((v) => v !== '').map((v) => parseAddress(v));
}
