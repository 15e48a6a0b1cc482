#!/usr/bin/env node
import { addOptions, DATA_ROOT_OPTION, flagsGiven, optionSource } from '../common/options.js';
import { checkArgs, cli, missingArguments, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, parseAddress, parseFollowerId, parsePath, parsePositiveInt } from '../common/config.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { parseSeq } from '../wire/seq.js';
import { ExitCode } from './exit-codes.js';
import { checkKey } from '../wire/write-validation.js';
import { parseMasterAddresses, STATUS_PROBE_TIMEOUT_MS } from './master-finder.js';
import { locateMaster } from './master-locator.js';
import { chooseEtcdOrMaster, CLIENT_ETCD_OPTIONS, discoveryFromArgv, locateMasterViaEtcd } from './etcd-discovery.js';
import { addressRef, nodeRef, readKey, type NodeRef } from './node-access.js';

const NAME = 'get-data';

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(NAME, [
      '$0 <id> <key> [options]',
      '$0 --address <host:port> <key> [options]',
      '$0 --master <host:port>[,<host:port>...] <key> [options]',
      '$0 --etcd <endpoints> --cluster <name> <key> [options]',
      '',
      'Prints follower <id>\'s value for <key> (exit 0), or says it is not found (exit 1).',
      'Asks the running follower over its read service; reads its store directly when it is stopped.',
      'With --address it asks the node serving reads at that address instead (any host; no store fallback).',
      'With --master it reads on the master: each address is asked for its status, and the node that answers',
      'as master at the newest epoch answers the read (a follower naming the master is followed once).',
      'With --etcd it reads on the master too: the leader etcd names, once it answers as the master of that epoch.',
      'With --min-seq S (the seq push-data printed) it waits until the node has applied S: read-your-writes.',
    ].join('\n'))
      .command('$0 [id] [key]', false, (y) =>
        y.positional('id', { type: 'string', describe: 'Follower id (left out with --address or --master)' }).positional('key', { type: 'string', describe: 'Key to read (UTF-8)' }),
      ),
    {
      ...DATA_ROOT_OPTION,
      'data-dir': { type: 'string', env: 'LR_FOLLOWER_DATA_DIR', describe: 'The follower\'s data directory  (default: <data-root>/follower-<id>)', parse: parsePath },
      address: { type: 'string', env: 'LR_NODE_ADDRESS', describe: 'Read from the node serving reads at this host:port (a follower\'s --listen), instead of finding follower <id> through its data directory', parse: (v) => parseAddress(v) },
      master: {
        type: 'string',
        env: 'LR_MASTER_ADDRESS',
        describe:
          'Read on the master instead of a follower: the node at this host:port, or of several comma-separated the one that answers as master at the newest epoch; a follower or deposed master given alone is followed once to the master it names  (default: none; from LR_MASTER_ADDRESS or --config only with <key> alone and no --address)',
        parse: parseMasterAddresses,
      },
      ...CLIENT_ETCD_OPTIONS,
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: `Deadline of the read call (and so of the --min-seq wait); with --master, each status asked while finding the master takes at most ${STATUS_PROBE_TIMEOUT_MS} ms more`, parse: parsePositiveInt },
      'min-seq': { type: 'string', default: '0', env: 'LR_MIN_SEQ', describe: 'Answer only once the node has applied this seq, waiting up to --timeout-ms; else fail with SEQ_NOT_APPLIED (exit 3). 0: do not wait', parse: parseSeq },
      seq: { type: 'boolean', default: false, env: 'LR_SHOW_SEQ', describe: 'Also print the applied seq the answer was read at (on stderr); with --master, the master\'s address and epoch too' },
    },
  ), CLIENT_SECURITY_OPTIONS), checkCommandLine).parse();
  const followerId = argv.id as number | undefined;
  const address = argv.address as string | undefined;
  const masters = argv.master as string[] | undefined;
  const timeoutMs = argv['timeout-ms'] as number;
  const security = clientSecurityFromArgv(argv);
  let node: NodeRef;
  let where: string;
  let found: { address: string; epoch: number } | undefined;
  if (followerId !== undefined) {
    node = nodeRef(followerId, argv['data-root'] as string, argv['data-dir'] as string | undefined);
    where = `on follower ${followerId}`;
  } else if (address !== undefined) {
    node = addressRef(address);
    where = `at ${address}`;
  } else {
    const discovery = discoveryFromArgv(argv, timeoutMs);
    let master;
    try {
      master = discovery ? await locateMasterViaEtcd(discovery, security, timeoutMs) : await locateMaster(masters!, security, timeoutMs);
    } finally {
      discovery?.close();
    }
    if (master.redirect) process.stderr.write(`${NAME}: ${master.redirect.reason}; reading on the master at ${master.address}\n`);
    found = { address: master.address, epoch: master.status.epoch };
    node = addressRef(master.address, 'master');
    where = `on the master at ${master.address}`;
  }
  const res = await readKey(node, keyOf(argv), timeoutMs, security, argv['min-seq'] as bigint);
  if (argv.seq) process.stderr.write(`appliedSeq=${res.seq} via=${res.via}${found ? ` master=${found.address} epoch=${found.epoch}` : ''}\n`);
  if (res.value === undefined) {
    process.stderr.write(`${NAME}: key ${JSON.stringify(String(argv.key))} not found ${where}\n`);
    return ExitCode.NOT_FOUND;
  }
  process.stdout.write(Buffer.concat([res.value, Buffer.from('\n')]));
  return ExitCode.OK;
});

/**
 * `<id> <key>`, or `<key>` alone with an address or with master addresses. An address or
 * master addresses from the environment or the config file give way to an `<id> <key>` on
 * the command line (a LR_MASTER_ADDRESS set for push-data does not turn `get-data 1 k`
 * into a read on the master), and an address from there to master addresses given as a
 * flag; as flags, --address or --master with an id is refused, and so are both together.
 * --etcd names the master as --master does (the two together as flags are refused).
 * Leaves exactly one of id, address and master (or etcd) set.
 */
function checkCommandLine(a: Record<string, unknown>): void {
  const given = [a.id, a.key].filter((v) => v !== undefined).map(String);
  // --etcd is another way to name the master: it and --master are resolved first (a flag beats the environment).
  chooseEtcdOrMaster(a);
  const etcd = a.etcd !== undefined;
  const masterName = etcd ? '--etcd' : '--master';
  const addressFlag = optionSource(a, 'address') === 'flag';
  const masterFlag = optionSource(a, etcd ? 'etcd' : 'master') === 'flag';
  if (addressFlag && masterFlag) throw usage(`give --address (a node's own data) or ${masterName} (the master's), not both`);
  const byAddress = a.address !== undefined && !masterFlag && (given.length === 1 || addressFlag);
  const byMaster = !byAddress && (a.master !== undefined || etcd) && (given.length === 1 || masterFlag);
  if (byAddress || byMaster) {
    const flag = byAddress ? '--address' : masterName;
    if (given.length === 0) throw missingArguments(['<key>']);
    if (given.length === 2) throw usage(`with ${flag}, give only <key>: ${byAddress ? 'the node at that address' : 'the master'} answers`);
    [a.id, a.key] = [undefined, given[0]];
    const ignored = flagsGiven(a, ['data-root', 'data-dir']);
    if (ignored.length > 0) throw usage(`${ignored.join(' and ')} ${ignored.length > 1 ? 'do' : 'does'} not apply with ${flag}`);
    if (byAddress) [a.master, a.etcd] = [undefined, undefined];
    else a.address = undefined;
  } else {
    if (given.length < 2) throw missingArguments(['<id>', '<key>'].slice(given.length));
    a.id = parseFollowerId(a.id);
    [a.address, a.master, a.etcd] = [undefined, undefined, undefined];
  }
  checkKey(keyOf(a));
}

function usage(message: string): ReplicatorError {
  return new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${message} (see --help)`);
}

function keyOf(argv: Record<string, unknown>): Buffer {
  return Buffer.from(String(argv.key ?? ''), 'utf8');
}
