import fs from 'node:fs';
import path from 'node:path';
import type { DigestResponse__Output } from '../../src/wire/generated/levelreplicator/v1/DigestResponse.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import { SERVER_OPTIONS } from '../../src/wire/grpc-transport.js';
import { callUnary, masterClient, storeClient } from '../../src/wire/rpc-client.js';
import { FaultProxy } from './fault-proxy.js';
import { waitConverged } from './cluster.js';
import { startFollower, startMaster, tempDir, type ServerProcess } from './processes.js';

/** The follower heartbeat watchdog startFollower (processes.ts) configures. */
export const HEARTBEAT_TIMEOUT_MS = 2_000;
/** The master's heartbeat interval startMaster (processes.ts) configures: an idle stream still carries a message this often. */
export const HEARTBEAT_INTERVAL_MS = 200;
/**
 * The longest the master takes to drop a silent follower connection, from the moment it
 * goes silent: its HTTP/2 keepalive (grpc-transport.ts) pings keepalive_time_ms after the
 * previous ping was answered and drops the connection when a ping goes unanswered for
 * keepalive_timeout_ms. The last answer came no later than the silence began.
 */
export const MASTER_KEEPALIVE_DETECT_MS = Number(SERVER_OPTIONS['grpc.keepalive_time_ms']) + Number(SERVER_OPTIONS['grpc.keepalive_timeout_ms']);
/** A node must stop cleanly this soon after SIGTERM. */
const STOP_DEADLINE_MS = 30_000;

export interface FollowerSlot {
  id: number;
  dir: string;
  /** The follower's --audit-file: every store open and applied seq range. */
  auditFile: string;
  /** The follower's only way to the master. */
  proxy: FaultProxy;
  proc?: ServerProcess;
  readAddress?: string;
  starts: number;
}

export interface ClusterOptions {
  followers: number;
  /** A follower's data directory (default: <root>/follower-<id>), e.g. on a small filesystem. */
  followerDir?: (id: number, root: string) => string;
  /** Extra master-server options (retention, say). */
  masterArgs?: string[];
  /** Runs before any node starts (e.g. mounts a small filesystem); returns its undo, run by destroy(). */
  prepare?: (root: string) => Promise<(() => Promise<void>) | void>;
}

/**
 * A master and followers as real processes in a temp directory, each follower reaching
 * the master only through its own FaultProxy. Any node can be SIGKILLed, SIGSTOPped or
 * restarted; the master always comes back on the same port so proxies and writers find it.
 */
export class Cluster {
  readonly root = tempDir('lr-faults-');
  readonly masterDir = path.join(this.root, 'master');
  master?: ServerProcess;
  masterAddress = '';
  masterStarts = 0;
  readonly followers = new Map<number, FollowerSlot>();
  /** Every process ever started, so destroy() leaves none behind. */
  private readonly procs: { name: string; proc: ServerProcess }[] = [];
  private undo: (() => Promise<void>) | void = undefined;

  constructor(private readonly masterArgs: string[] = []) {}

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(opts.masterArgs);
    try {
      c.undo = await opts.prepare?.(c.root);
      await c.startMaster();
      for (let id = 1; id <= opts.followers; id++) {
        c.followers.set(id, {
          id,
          dir: opts.followerDir?.(id, c.root) ?? path.join(c.root, `follower-${id}`),
          auditFile: path.join(c.root, `follower-${id}.audit`),
          proxy: await FaultProxy.start(c.masterAddress),
          starts: 0,
        });
      }
      await Promise.all([...c.followers.keys()].map((id) => c.startFollower(id)));
      return c;
    } catch (err) {
      await c.destroy();
      throw err;
    }
  }

  /** Every process started so far, with a name like follower-2-3 (third start of follower 2). */
  get history(): readonly { name: string; proc: ServerProcess }[] {
    return this.procs;
  }

  slot(id: number): FollowerSlot {
    const s = this.followers.get(id);
    if (!s) throw new Error(`no follower ${id} in this cluster`);
    return s;
  }

  async startMaster(): Promise<void> {
    // Restarts reuse the first port. On a shared machine another process could take it
    // in between: retry a few times before failing the scenario.
    for (let attempt = 1; ; attempt++) {
      try {
        const h = await startMaster(this.masterDir, this.masterAddress || '127.0.0.1:0', this.masterArgs);
        this.procs.push({ name: `master-${this.masterStarts + 1}`, proc: h.proc });
        this.master = h.proc;
        this.masterAddress = h.address;
        this.masterStarts++;
        return;
      } catch (err) {
        if (attempt >= 5 || !/ADDRESS_IN_USE/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
  }

  async killMaster(): Promise<void> {
    await this.master?.kill('SIGKILL');
    this.master = undefined;
  }

  async startFollower(id: number): Promise<void> {
    const s = this.slot(id);
    const h = await startFollower(id, s.dir, s.proxy.address, ['--audit-file', s.auditFile]);
    this.procs.push({ name: `follower-${id}-${s.starts + 1}`, proc: h.proc });
    s.proc = h.proc;
    s.readAddress = h.readAddress;
    s.starts++;
  }

  async killFollower(id: number): Promise<void> {
    const s = this.slot(id);
    await s.proc?.kill('SIGKILL');
    s.proc = undefined;
  }

  /** Ends every fault: links forward again, frozen processes run, dead ones are restarted. */
  async healAll(): Promise<void> {
    for (const s of this.followers.values()) {
      s.proxy.heal();
      if (s.proc?.paused) s.proc.resume();
    }
    if (!this.master || this.master.exited) await this.startMaster();
    for (const s of this.followers.values()) if (!s.proc || s.proc.exited) await this.startFollower(s.id);
  }

  async status(timeoutMs = 2_000): Promise<StatusResponse__Output> {
    const client = masterClient(this.masterAddress);
    try {
      return await callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), timeoutMs, { role: 'master', address: this.masterAddress });
    } finally {
      client.close();
    }
  }

  /** Polls until every follower is connected and has applied the master's last seq. */
  waitConverged(timeoutMs = 60_000): Promise<bigint> {
    return waitConverged(this.masterAddress, [...this.followers.keys()], timeoutMs);
  }

  /** Digests of every running node over its read service: [name, digest, seq]. */
  async digests(): Promise<{ node: string; digest: string; seq: bigint }[]> {
    const targets = [{ node: 'master', address: this.masterAddress }];
    for (const s of this.followers.values()) targets.push({ node: `follower ${s.id}`, address: s.readAddress! });
    return Promise.all(
      targets.map(async ({ node, address }) => {
        const client = storeClient(address);
        try {
          const d = await callUnary<DigestResponse__Output>((o, cb) => client.Digest({}, o, cb), 60_000, { role: 'follower', address });
          return { node, digest: d.digest, seq: BigInt(d.seq) };
        } finally {
          client.close();
        }
      }),
    );
  }

  /** SIGTERM every node (followers first); returns the ones that did not exit 0 in time (contract 11). */
  async stop(): Promise<string[]> {
    const bad: string[] = [];
    const stopOne = async (name: string, proc: ServerProcess | undefined) => {
      if (!proc) return;
      const timer = setTimeout(() => {
        bad.push(`${name} did not exit within ${STOP_DEADLINE_MS} ms of SIGTERM`);
        proc.signal('SIGKILL');
      }, STOP_DEADLINE_MS);
      const r = await proc.kill('SIGTERM');
      clearTimeout(timer);
      if (r.code !== 0) bad.push(`${name} exited with ${r.code ?? r.signal}: ${proc.stderr.trim()}`);
    };
    for (const s of this.followers.values()) {
      await stopOne(`follower ${s.id}`, s.proc);
      s.proc = undefined;
    }
    await stopOne('master', this.master);
    this.master = undefined;
    return bad;
  }

  /**
   * Kills whatever still runs, closes the proxies, undoes prepare, and removes the
   * directory — or, with keep (or LR_FAULTS_KEEP set), leaves it with every process's log
   * next to the stores, for a post-mortem.
   */
  async destroy({ keep = false } = {}): Promise<void> {
    await Promise.all(this.procs.map((p) => p.proc.kill('SIGKILL')));
    await Promise.all([...this.followers.values()].map((s) => s.proxy.close()));
    await this.undo?.();
    if (keep || process.env.LR_FAULTS_KEEP) {
      // Every process's log and stderr next to the stores, for a post-mortem.
      for (const { name, proc } of this.procs) {
        fs.writeFileSync(path.join(this.root, `${name}.log`), proc.logs.map((l) => JSON.stringify(l)).join('\n') + '\n' + proc.stderr);
      }
      process.stderr.write(`kept ${this.root}\n`);
    } else {
      fs.rmSync(this.root, { recursive: true, force: true });
    }
  }
}
