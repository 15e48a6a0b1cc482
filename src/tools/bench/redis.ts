import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { sleep } from '../harness/polling.js';
import { RespConnection } from './resp.js';
import type { Workload } from './workload.js';

const run = promisify(execFile);
const POLL_MS = 10;

/**
 * The peer the issue compares with: Redis with one replica on loopback, both with
 * appendonly everysec, driven by redis-benchmark and redis-cli (no client library).
 * Diskless full sync starts at once (repl-diskless-sync-delay 0) instead of Redis's
 * default 5 s wait, which would only make Redis look slower.
 */

/** redis-server's version line, or undefined when Redis is not installed. */
export function redisVersion(): string | undefined {
  try {
    return execFileSync('redis-server', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** One redis-server process (appendonly everysec, diskless sync at once), driven through redis-cli; polled over one connection. */
export class RedisServer {
  private conn: Promise<RespConnection> | undefined;

  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
  ) {}

  static async start(dir: string): Promise<RedisServer> {
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--protected-mode', 'no',
        '--appendonly', 'yes', '--appendfsync', 'everysec', '--repl-diskless-sync-delay', '0', '--logfile', path.join(dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const server = new RedisServer(port, child, exited);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        if ((await server.cli('PING')).trim() === 'PONG') return server;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
      await sleep(50);
    }
  }

  async cli(...args: string[]): Promise<string> {
    return (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args], { maxBuffer: 16 << 20 })).stdout;
  }

  /** INFO over this server's one polling connection (no process per poll). */
  async info(section: string): Promise<Record<string, string>> {
    this.conn ??= RespConnection.connect(this.port);
    const out: Record<string, string> = {};
    for (const line of (await (await this.conn).command('INFO', section)).split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  }

  /** Waits until this replica is linked to its master and not syncing; resolves to the time (performance.now()). */
  async waitSynced(timeoutMs = 600_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.info('replication');
      if (r.master_link_status === 'up' && r.master_sync_in_progress === '0') return performance.now();
      if (Date.now() > deadline) throw new Error('the Redis replica did not finish its sync');
      await sleep(POLL_MS);
    }
  }

  /** Waits until no fork of this server (an AOF rewrite, an RDB save for a sync) is running or due. */
  async waitIdle(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await this.info('persistence');
      if (p.aof_rewrite_in_progress === '0' && p.aof_rewrite_scheduled === '0' && p.rdb_bgsave_in_progress === '0') return;
      if (Date.now() > deadline) throw new Error('Redis did not finish its background rewrite or save');
      await sleep(POLL_MS);
    }
  }

  async stop(): Promise<void> {
    (await this.conn?.catch(() => undefined))?.close();
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface RedisFigures {
  setsPerSecond: number;
  /** From the start of the load until the replica has every write. */
  endToEndSeconds: number;
  fullSyncSeconds: number;
}

/** Loads entries [0, count) of the workload with redis-cli --pipe (setup, not measured). */
async function populate(server: RedisServer, w: Workload, count: number): Promise<void> {
  const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(server.port), '--pipe'], { stdio: ['pipe', 'ignore', 'inherit'] });
  const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  const head = Buffer.from(`*3\r\n$3\r\nSET\r\n$16\r\n`);
  const mid = Buffer.from(`\r\n$${w.valueBytes}\r\n`);
  const crlf = Buffer.from('\r\n');
  for (let i = 0; i < count; ) {
    const parts: Buffer[] = [];
    for (const end = Math.min(count, i + 1000); i < end; i++) parts.push(head, w.key(i), mid, w.value(i), crlf);
    if (!child.stdin!.write(Buffer.concat(parts))) await new Promise((r) => child.stdin!.once('drain', r));
  }
  child.stdin!.end();
  if ((await done) !== 0) throw new Error('redis-cli --pipe failed');
}

/**
 * SET throughput with one replica attached (redis-benchmark: `clients` connections,
 * `batch` commands pipelined, random keys among `count`), then the full sync of a fresh
 * replica from a master holding exactly `count` keys of the workload.
 */
export async function redisFigures(dir: string, w: Workload, opts: { count: number; batch: number; clients: number }): Promise<RedisFigures> {
  fs.rmSync(dir, { recursive: true, force: true });
  const master = await RedisServer.start(path.join(dir, 'master'));
  const replicas: RedisServer[] = [];
  try {
    const replica = await RedisServer.start(path.join(dir, 'replica'));
    replicas.push(replica);
    await replica.cli('REPLICAOF', '127.0.0.1', String(master.port));
    await replica.waitSynced();
    // The load starts with no start-up fork running (the first AOF rewrite, the replica's
    // sync), as the nodes' ingest rows start on freshly started, idle nodes.
    await master.waitIdle();
    await replica.waitIdle();
    const started = performance.now();
    const { stdout } = await run(
      'redis-benchmark',
      ['-h', '127.0.0.1', '-p', String(master.port), '-t', 'set', '-n', String(opts.count), '-d', String(w.valueBytes), '-P', String(opts.batch), '-c', String(opts.clients), '-r', String(opts.count), '--csv', '-q'],
      { maxBuffer: 16 << 20 },
    );
    const row = stdout.split('\n').find((l) => l.startsWith('"SET"'));
    if (!row) throw new Error(`unexpected redis-benchmark output: ${stdout}`);
    const setsPerSecond = Number(JSON.parse(`[${row}]`)[1]);
    const target = (await master.info('replication')).master_repl_offset;
    for (;;) {
      if ((await replica.info('replication')).slave_repl_offset === target) break;
      await sleep(POLL_MS);
    }
    const endToEndSeconds = (performance.now() - started) / 1000;

    await master.cli('FLUSHALL');
    await populate(master, w, opts.count);
    const keys = Number((await master.cli('DBSIZE')).trim());
    if (keys !== opts.count) throw new Error(`Redis holds ${keys} keys, expected ${opts.count}`);
    // Timed right after the load, as the nodes' snapshot row is: Redis may still be
    // rewriting its AOF (the load grew it past auto-aof-rewrite's threshold) as the
    // master's LevelDB may still be compacting. Neither side is waited out.
    const fresh = await RedisServer.start(path.join(dir, 'fresh-replica'));
    replicas.push(fresh);
    const syncStart = performance.now();
    await fresh.cli('REPLICAOF', '127.0.0.1', String(master.port));
    const synced = await fresh.waitSynced();
    const got = Number((await fresh.cli('DBSIZE')).trim());
    if (got !== opts.count) throw new Error(`the fresh Redis replica holds ${got} keys after its sync, expected ${opts.count}`);
    return { setsPerSecond, endToEndSeconds, fullSyncSeconds: (synced - syncStart) / 1000 };
  } finally {
    for (const r of replicas) await r.stop();
    await master.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
