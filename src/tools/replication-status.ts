#!/usr/bin/env node
import { addOptions } from '../common/options.js';
import { checkArgs, cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, parsePositiveInt } from '../common/config.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import { callUnary, fetchStatus, masterClient } from '../wire/rpc-client.js';
import { findMaster, MASTER_ADDRESSES_OPTION, STATUS_PROBE_TIMEOUT_MS } from './master-finder.js';
import { toJson, toText, type ReportExtras } from './status-report.js';
import { gatherTree } from './status-tree.js';
import { chooseEtcdOrMaster, CLIENT_ETCD_OPTIONS, discoveryFromArgv, locateMasterViaEtcd } from './etcd-discovery.js';
import { etcdViewText, gatherEtcdView, type EtcdView } from './etcd-status.js';

const NAME = 'replication-status';
/** Shortest --watch interval: a status call every 100 ms is already a busy loop for a human. */
const MIN_WATCH_SECONDS = 0.1;
const TRANSIENT = new Set<string>([ErrorCode.MASTER_UNAVAILABLE, ErrorCode.FOLLOWER_UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED, ErrorCode.SHUTTING_DOWN]);

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(
      NAME,
      [
        '$0 [options]',
        '',
        "Shows the master's log position, node id, epoch and epoch history, write rate and write policy",
        'and, per follower: state, applied and sent seq, lag in entries and time, last acknowledgement,',
        'connected/disconnected since, bytes sent, what its slot holds, and whether its acks are durable.',
        "Pointed at a follower (--master <its read address>), shows that follower's own view: its",
        'upstream, its epoch and the followers that stream from it.',
        '',
        'With --master a,b,c every address is asked and the master at the newest epoch is shown (none:',
        'exit 3, saying what each answered). --tree (and always --json) also asks every follower at its',
        'read address and shows the tree master -> follower -> chained follower, with each node\'s',
        'applied seq and lag; a node that does not answer is shown as unreachable.',
        '',
        'With --etcd (and --cluster) it first shows what etcd says: the leader (node, address, epoch) and',
        'its lease\'s remaining time, the sync set, a switchover under way, and each node\'s record (role,',
        'applied seq, epoch) with whether it would campaign if the leader were gone; then the report of',
        'the master etcd names. No master answers (a failover under way): the etcd part, then exit 3.',
      ].join('\n'),
    ),
    {
      ...MASTER_ADDRESSES_OPTION,
      ...CLIENT_ETCD_OPTIONS,
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: `Deadline of the status call (of each one asked while looking for the master or walking the tree: at most ${STATUS_PROBE_TIMEOUT_MS} ms)`, parse: parsePositiveInt },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print the status as JSON, with the tree (with --watch: one line per refresh)' },
      tree: { type: 'boolean', default: false, env: 'LR_STATUS_TREE', describe: 'Ask every follower at its read address and show the replication tree (master -> follower -> chained follower) instead of the follower table' },
      watch: { type: 'number', env: 'LR_STATUS_WATCH', describe: `Refresh every this many seconds (at least ${MIN_WATCH_SECONDS}) until interrupted (Ctrl-C)  (default: off, print once)`, parse: parseWatch },
    },
  ), CLIENT_SECURITY_OPTIONS), (a) => chooseEtcdOrMaster(a)).parse();
  const addresses = (argv.master as string[] | undefined) ?? [];
  const json = argv.json as boolean;
  const withTree = json || (argv.tree as boolean);
  const watchSeconds = argv.watch as number | undefined;
  const timeoutMs = argv['timeout-ms'] as number;
  const security = clientSecurityFromArgv(argv);
  // One address: asked as given (a master, or a follower's own view), on one channel kept across --watch refreshes.
  const client = addresses.length === 1 ? masterClient(addresses[0], security) : undefined;
  const discovery = discoveryFromArgv(argv, timeoutMs);
  const report = async (): Promise<{ address: string; s: StatusResponse__Output; extras: ReportExtras }> => {
    let address = addresses[0];
    let s: StatusResponse__Output;
    const extras: ReportExtras = {};
    if (discovery) {
      // The master etcd names, found again at each refresh (a failover changes it).
      const found = await locateMasterViaEtcd(discovery, security, timeoutMs);
      [address, s, extras.newestEpoch] = [found.address, found.status, found.newestEpoch];
    } else if (client) {
      s = await callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), timeoutMs, { role: 'master', address });
    } else {
      // Several: the master among them, found again at each refresh (it may change).
      const found = await findMaster(addresses, security, timeoutMs);
      [address, s, extras.newestEpoch] = [found.address, found.status, found.newestEpoch];
    }
    if (withTree) extras.tree = await gatherTree(address, s, (a) => fetchStatus(a, security, Math.min(timeoutMs, STATUS_PROBE_TIMEOUT_MS), 'follower'));
    return { address, s, extras };
  };
  /**
   * Prints one report after `header`. With --etcd, etcd's view comes first and is printed
   * also when no master answers (a failover under way); that failure is thrown after it.
   */
  const show = async (header: string, indent: number | undefined): Promise<void> => {
    const view: EtcdView | undefined = discovery ? await gatherEtcdView(discovery) : undefined;
    let master: Awaited<ReturnType<typeof report>> | undefined;
    let failure: ReplicatorError | undefined;
    try {
      master = await report();
    } catch (err) {
      if (!view || !isReplicatorError(err) || !TRANSIENT.has(err.code)) throw err;
      failure = err;
    }
    if (json) {
      const body = master ? toJson(master.address, master.s, master.extras) : { role: null, error: { code: failure!.code, message: failure!.message } };
      process.stdout.write(header + JSON.stringify(view ? { ...body, etcd: view } : body, null, indent) + '\n');
    } else {
      const etcdPart = view ? `${etcdViewText(view)}\n${master ? '' : 'master    no node answers as the master etcd names now (why: on stderr)\n'}` : '';
      process.stdout.write(header + etcdPart + (master ? toText(master.address, master.s, master.extras) : ''));
    }
    if (failure) throw failure;
  };
  try {
    if (watchSeconds === undefined) return await show('', 2);
    await watch(watchSeconds * 1000, () =>
      show(json ? '' : `${process.stdout.isTTY ? '\x1b[H\x1b[2J' : '\n'}${new Date().toISOString()}  every ${watchSeconds}s (Ctrl-C to stop)\n`, undefined),
    );
  } finally {
    client?.close();
    discovery?.close();
  }
});

/**
 * Runs show() now and every intervalMs until SIGINT or SIGTERM (then exit 0). A failed
 * call does not end the watch: its one line goes to stderr and the next refresh tries
 * again, so a master restart can be watched through.
 */
async function watch(intervalMs: number, show: () => Promise<void>): Promise<void> {
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    while (!stopped) {
      try {
        await show();
      } catch (err) {
        // A node that is down or restarting is watched through; anything else (a refused token, ...) ends the watch.
        if (!isReplicatorError(err) || !TRANSIENT.has(err.code)) throw err;
        process.stderr.write(`${NAME}: ${err.message} [${err.code}]\n`);
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function parseWatch(raw: unknown, flag: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < MIN_WATCH_SECONDS || n > 86_400) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${flag} must be a number of seconds from ${MIN_WATCH_SECONDS} to 86400, got ${JSON.stringify(raw)}`);
  }
  return n;
}
