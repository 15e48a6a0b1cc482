#!/usr/bin/env node
import { addOptions, MASTER_OPTION } from '../common/options.js';
import { cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, parsePositiveInt } from '../common/config.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import { callUnary, masterClient } from '../wire/rpc-client.js';
import { toJson, toText } from './status-report.js';

const NAME = 'replication-status';
/** Shortest --watch interval: a status call every 100 ms is already a busy loop for a human. */
const MIN_WATCH_SECONDS = 0.1;
const TRANSIENT = new Set<string>([ErrorCode.MASTER_UNAVAILABLE, ErrorCode.FOLLOWER_UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED, ErrorCode.SHUTTING_DOWN]);

await runCli(NAME, async () => {
  const argv = await withSecurityOptions(addOptions(
    cli(
      NAME,
      '$0 [options]\n\nShows the master\'s log position, write rate and write policy and, per follower: state, applied and sent seq,\nlag in entries and time, last acknowledgement, connected/disconnected since, bytes sent, what its slot holds,\nand whether its acks are durable. Pointed at a follower (--master <its read address>), shows that follower\'s own view.',
    ),
    {
      ...MASTER_OPTION,
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: 'Deadline of the status call', parse: parsePositiveInt },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print the status as JSON (with --watch: one line per refresh)' },
      watch: { type: 'number', env: 'LR_STATUS_WATCH', describe: `Refresh every this many seconds (at least ${MIN_WATCH_SECONDS}) until interrupted (Ctrl-C)  (default: off, print once)`, parse: parseWatch },
    },
  ), CLIENT_SECURITY_OPTIONS).parse();
  const address = argv.master as string;
  const json = argv.json as boolean;
  const watchSeconds = argv.watch as number | undefined;
  const client = masterClient(address, clientSecurityFromArgv(argv));
  const fetchStatus = () => callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), argv['timeout-ms'] as number, { role: 'master', address });
  try {
    if (watchSeconds === undefined) {
      const s = await fetchStatus();
      process.stdout.write(json ? JSON.stringify(toJson(address, s), null, 2) + '\n' : toText(address, s));
      return;
    }
    await watch(watchSeconds * 1000, async () => {
      const s = await fetchStatus();
      if (json) process.stdout.write(JSON.stringify(toJson(address, s)) + '\n');
      else process.stdout.write(`${process.stdout.isTTY ? '\x1b[H\x1b[2J' : '\n'}${new Date().toISOString()}  every ${watchSeconds}s (Ctrl-C to stop)\n${toText(address, s)}`);
    });
  } finally {
    client.close();
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
