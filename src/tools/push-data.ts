#!/usr/bin/env node
import fs from 'node:fs';
import { addOptions, flagsGiven } from '../common/options.js';
import { checkArgs, cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, parseNonNegativeInt, parsePath, parsePositiveInt } from '../common/config.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { AckPolicy } from '../wire/generated/levelreplicator/v1/AckPolicy.js';
import type { Write } from '../wire/generated/levelreplicator/v1/Write.js';
import type { WriteResponse__Output } from '../wire/generated/levelreplicator/v1/WriteResponse.js';
import { MAX_WRITES_PER_REQUEST } from '../common/limits.js';
import type { MasterClient } from '../wire/generated/levelreplicator/v1/Master.js';
import { callUnary, masterClient } from '../wire/rpc-client.js';
import { seqFromWire } from '../wire/seq.js';
import { checkKey, checkValue } from '../wire/write-validation.js';
import { readPairBatches } from './bulk-reader.js';
import { chooseEtcdOrMaster, CLIENT_ETCD_OPTIONS, discoveryFromArgv } from './etcd-discovery.js';
import { findMaster, MASTER_ADDRESSES_OPTION } from './master-finder.js';
import { MasterWriter, type SendWrite } from './master-writer.js';

const NAME = 'push-data';

await runCli(NAME, async () => {
  const argv = await checkArgs(withSecurityOptions(addOptions(
    cli(
      NAME,
      [
        '$0 <key> <value> [<key> <value> ...]   put pairs; several pairs are one atomic write under one seq',
        '$0 --delete <key> [<key> ...]           delete keys (one atomic write)',
        '$0 --file <pairs.tsv>                   bulk load key<TAB>value lines, each under its own seq',
        '$0 --stdin                              bulk load key<TAB>value lines from standard input',
        '',
        'Writes through the master and prints the seq the write got (for bulk loads, the seq range);',
        'pass it to `get-data --min-seq` to read your write on a follower.',
        'With --ack-followers N the answer waits until N followers durably applied the write; if they',
        'do not in time, the write stays committed, the seq is still printed, and the exit code is 7.',
        '',
        'With --master a,b,c every address is asked for its status and the write goes to the one that is',
        'master at the newest epoch. A write refused by a node that is not the master (NOT_MASTER or',
        'STALE_EPOCH, naming the master) is sent once to the master it names; one refused because a',
        'switchover is under way (WRITES_PAUSED) is tried again every 50 ms until --timeout-ms.',
        '',
        'With --etcd (and --cluster) the write goes to the leader etcd names, carrying its epoch. During a',
        'failover, a write refused before it was written (NO_LEASE, no leader elected yet, the old master',
        'unreachable before anything was sent) is tried again every 50 ms at the leader etcd names then,',
        'until --timeout-ms; a write whose answer was lost is never sent again (its outcome is unknown).',
      ].join('\n'),
    ).command('$0 [args..]', false, (y) => y.positional('args', { type: 'string', array: true, describe: 'key value pairs, or keys with --delete' })),
    {
      ...MASTER_ADDRESSES_OPTION,
      ...CLIENT_ETCD_OPTIONS,
      delete: { type: 'boolean', default: false, env: 'LR_PUSH_DELETE', describe: 'Delete the given keys instead of putting pairs' },
      file: { type: 'string', env: 'LR_PUSH_FILE', describe: 'Bulk load from this file of key<TAB>value lines', parse: parseInputFile },
      stdin: { type: 'boolean', default: false, env: 'LR_PUSH_STDIN', describe: 'Bulk load key<TAB>value lines from standard input' },
      'batch-size': { type: 'number', default: 1_000, env: 'LR_PUSH_BATCH_SIZE', describe: `Pairs per request in a bulk load (at most ${MAX_WRITES_PER_REQUEST})`, parse: parseBatchSize },
      concurrency: { type: 'number', default: 1, env: 'LR_PUSH_CONCURRENCY', describe: 'Requests in flight in a bulk load; above 1, batches may commit out of file order (use only for distinct keys)', parse: parsePositiveInt },
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: "Deadline of each write call, its redirect and its retries while writes are paused included; --ack-timeout-ms is added to it. It also bounds the master's default acknowledgement wait, which push-data cannot know: the master answers REPLICATION_TIMEOUT shortly before this deadline", parse: parsePositiveInt },
      'ack-followers': { type: 'number', env: 'LR_PUSH_ACK_FOLLOWERS', describe: 'Answer once this many followers durably applied the write; 0: once committed on the master  (default: the master\'s --ack-followers)', parse: (v, f) => parseNonNegativeInt(v, f, 0xffff_ffff) },
      'ack-timeout-ms': { type: 'number', env: 'LR_PUSH_ACK_TIMEOUT_MS', describe: 'Longest wait for those followers; needs --ack-followers  (default: the master\'s --ack-timeout-ms)', parse: parsePositiveInt },
      redirect: { type: 'boolean', default: true, env: 'LR_PUSH_REDIRECT', describe: 'Send a write refused with NOT_MASTER or STALE_EPOCH once to the master the refusal names (--no-redirect: the refusal is the answer; writes go only to the address given or found)' },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print the answer as JSON: seqs, acknowledgement status, follower counts and the epoch the write was committed in' },
    },
  ), CLIENT_SECURITY_OPTIONS), checkCommandLine).parse();
  const addresses = argv.master as string[] | undefined;
  const security = clientSecurityFromArgv(argv);
  const ack = ackPolicy(argv['ack-followers'] as number | undefined, argv['ack-timeout-ms'] as number | undefined);
  const callTimeoutMs = (argv['timeout-ms'] as number) + (ack?.followers ? ack.timeoutMs : 0);
  const file = argv.file as string | undefined;
  const bulk = file !== undefined || (argv.stdin as boolean);
  // Keys and values are checked before anything is sent.
  const write = bulk ? undefined : singleWrite(positionals(argv), argv.delete as boolean);

  // --etcd: the leader etcd names, asked again whenever a write was refused before it was written.
  const discovery = discoveryFromArgv(argv, argv['timeout-ms'] as number);
  // One address: written to as given (no status round trip). Several: the master among them, and the newest epoch they know.
  const found = addresses && addresses.length > 1 ? await findMaster(addresses, security, argv['timeout-ms'] as number) : undefined;
  const clients = new Map<string, MasterClient>();
  const sendTo: SendWrite = (address, request, timeoutMs) => {
    let client = clients.get(address);
    if (!client) clients.set(address, (client = masterClient(address, security)));
    return callUnary<WriteResponse__Output>((o, cb) => client.Write(request, o, cb), timeoutMs, { role: 'master', address, write: true });
  };
  const writer = new MasterWriter(discovery ? undefined : (found?.address ?? addresses![0]), sendTo, found?.newestEpoch ?? 0, {
    redirect: argv.redirect as boolean,
    onMove: (from, to, why) => process.stderr.write(`${NAME}: ${from} answered ${why}; writing to the master at ${to}\n`),
    locate: discovery && (() => discovery.electedLeader()),
    onLocate: (leader, from, after) => {
      // The first leader found is no news; a move after a refusal (a failover) is.
      if (from !== undefined) process.stderr.write(`${NAME}: ${from} answered ${after?.code ?? 'nothing'}; etcd names node ${leader.nodeId} at ${leader.address} (epoch ${leader.epoch}) the leader: writing there\n`);
    },
  });
  const send = (writes: Write[]) => writer.write({ writes, ack }, callTimeoutMs);
  try {
    if (!write) return await bulkLoad(file ?? '-', argv['batch-size'] as number, argv.concurrency as number, send, argv.json as boolean);
    const res = await send([write]);
    if (argv.json) process.stdout.write(JSON.stringify(answerJson(res)) + '\n');
    else process.stdout.write(`${res.firstSeq}\n`);
    if (res.ackStatus === 'REPLICATION_TIMEOUT') throw notReplicated(`seq ${res.lastSeq}`, res);
  } finally {
    for (const client of clients.values()) client.close();
    discovery?.close();
  }
});

function usage(message: string): ReplicatorError {
  return new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${message} (see --help)`);
}

function parseBatchSize(raw: unknown, flag: string): number {
  const n = parsePositiveInt(raw, flag);
  if (n > MAX_WRITES_PER_REQUEST) throw usage(`${flag} is at most ${MAX_WRITES_PER_REQUEST}`);
  return n;
}

/** A bulk load source: a path, and not a directory (found now, not as an I/O error mid-load). */
function parseInputFile(raw: unknown, flag: string): string {
  const file = parsePath(raw, flag);
  if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw usage(`${flag} ${file} is a directory; give a file of key<TAB>value lines`);
  return file;
}

function positionals(argv: Record<string, unknown>): string[] {
  return ((argv.args as string[] | undefined) ?? []).map(String);
}

/** The combinations of arguments that make one kind of write, checked at parse time; anything else is refused. */
function checkCommandLine(argv: Record<string, unknown>): void {
  chooseEtcdOrMaster(argv);
  const args = positionals(argv);
  if (argv.file !== undefined || argv.stdin) {
    if (args.length > 0 || argv.delete || (argv.file !== undefined && argv.stdin)) {
      throw usage('a bulk load takes either --file or --stdin, and no keys, values or --delete');
    }
  } else {
    if (argv.delete) {
      if (args.length === 0) throw usage('give at least one key to delete');
    } else if (args.length === 0 || args.length % 2 !== 0) {
      throw usage('give a key and a value (or several key value pairs)');
    }
    // Options only a bulk load uses: given as flags to a single write, they would be silently ignored.
    const ignored = flagsGiven(argv, ['batch-size', 'concurrency']);
    if (ignored.length > 0) throw usage(`${ignored.join(' and ')} ${ignored.length > 1 ? 'apply' : 'applies'} only to a bulk load (--file or --stdin)`);
  }
  if (argv['ack-followers'] === undefined && argv['ack-timeout-ms'] !== undefined) throw usage('--ack-timeout-ms needs --ack-followers');
}

/** The one atomic write of the positionals: key value pairs, or keys to delete. */
function singleWrite(args: string[], del: boolean): Write {
  if (del) {
    const keys = args.map((k) => Buffer.from(k, 'utf8'));
    keys.forEach((k) => checkKey(k));
    return { mutations: keys.map((key) => ({ kind: 'DELETE', key })) };
  }
  const mutations: Write['mutations'] = [];
  for (let i = 0; i < args.length; i += 2) {
    const key = Buffer.from(args[i], 'utf8');
    const value = Buffer.from(args[i + 1], 'utf8');
    checkKey(key);
    checkValue(value);
    mutations.push({ kind: 'PUT', key, value });
  }
  return { mutations };
}

/** The request's acknowledgement policy; undefined leaves it to the master's default. */
function ackPolicy(followers: number | undefined, timeoutMs: number | undefined): (AckPolicy & { timeoutMs: number }) | undefined {
  return followers === undefined ? undefined : { followers, timeoutMs: timeoutMs ?? 0 };
}

function answerJson(res: WriteResponse__Output) {
  return {
    firstSeq: res.firstSeq,
    lastSeq: res.lastSeq,
    ackStatus: res.ackStatus,
    followersRequested: res.followersRequested,
    followersAcked: res.followersAcked,
    epoch: res.epoch,
  };
}

/** Exit 7 (REPLICATION_TIMEOUT): committed on the master, acknowledged by fewer followers than asked. */
function notReplicated(what: string, res: WriteResponse__Output): ReplicatorError {
  return new ReplicatorError(
    ErrorCode.REPLICATION_TIMEOUT,
    `${what} is committed on the master, but only ${res.followersAcked} of ${res.followersRequested} followers acknowledged it before the timeout`,
  );
}

async function bulkLoad(
  source: string,
  batchSize: number,
  concurrency: number,
  send: (writes: Write[]) => Promise<WriteResponse__Output>,
  json: boolean,
): Promise<void> {
  const started = Date.now();
  const inFlight = new Set<Promise<void>>();
  let pairs = 0;
  let firstSeq: bigint | undefined;
  let lastSeq = 0n;
  let epoch = 0;
  let failure: unknown;
  try {
    for await (const batch of readPairBatches(source, batchSize)) {
      if (failure) break;
      const p: Promise<void> = send(batch.map(({ key, value }) => ({ mutations: [{ kind: 'PUT', key, value }] }))).then(
        (res) => {
          const f = seqFromWire(res.firstSeq);
          const l = seqFromWire(res.lastSeq);
          if (firstSeq === undefined || f < firstSeq) firstSeq = f;
          if (l > lastSeq) lastSeq = l;
          if (res.epoch > epoch) epoch = res.epoch;
          pairs += batch.length;
          // Committed, but not on enough followers: stop rather than pile up more of the same.
          if (res.ackStatus === 'REPLICATION_TIMEOUT') failure ??= notReplicated(`the batch of seqs ${f}..${l}`, res);
        },
        (err) => {
          failure ??= err;
        },
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
  } catch (err) {
    failure ??= err;
  }
  await Promise.all(inFlight);
  const seconds = (Date.now() - started) / 1000;
  const range = firstSeq === undefined ? 'no seqs' : `seqs ${firstSeq}..${lastSeq}`;
  if (failure) {
    if (pairs === 0) throw failure;
    const e = isReplicatorError(failure) ? failure : new ReplicatorError(ErrorCode.INTERNAL, String((failure as Error)?.message ?? failure));
    throw new ReplicatorError(e.code, `${e.message} (after committing ${pairs} pairs, ${range})`, { cause: failure });
  }
  const rate = Math.round(pairs / Math.max(seconds, 0.001));
  if (json) process.stdout.write(JSON.stringify({ pairs, firstSeq: firstSeq?.toString(), lastSeq: lastSeq.toString(), seconds, rate, epoch }) + '\n');
  else process.stdout.write(`loaded ${pairs} pairs, ${range}, in ${seconds.toFixed(2)} s (${rate}/s)\n`);
}
