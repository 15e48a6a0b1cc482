import fs from 'node:fs';
import path from 'node:path';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import { SERVER_OPTIONS } from '../../src/wire/grpc-transport.js';
import { callUnary, masterClient } from '../../src/wire/rpc-client.js';
import { Cluster as ProcessCluster, type FollowerSlot as ProcessSlot } from '../../src/tools/harness/cluster.js';
import { FaultProxy } from './fault-proxy.js';
import { digestOf, waitConverged } from './cluster.js';
import type { StoresView } from './oracles.js';
import type { ScenarioCluster } from './scenario-runner.js';
import { TEST_FOLLOWER_ARGS, TEST_HEARTBEAT_INTERVAL_MS, TEST_HEARTBEAT_TIMEOUT_MS, TEST_MASTER_ARGS, tempDir } from './processes.js';

/** The follower heartbeat watchdog the tests configure (processes.ts). */
export const HEARTBEAT_TIMEOUT_MS = TEST_HEARTBEAT_TIMEOUT_MS;
/** The master's heartbeat interval the tests configure (processes.ts): an idle stream still carries a message this often. */
export const HEARTBEAT_INTERVAL_MS = TEST_HEARTBEAT_INTERVAL_MS;
/**
 * The longest the master takes to drop a silent follower connection, from the moment it
 * goes silent: its HTTP/2 keepalive (grpc-transport.ts) pings keepalive_time_ms after the
 * previous ping was answered and drops the connection when a ping goes unanswered for
 * keepalive_timeout_ms. The last answer came no later than the silence began.
 */
export const MASTER_KEEPALIVE_DETECT_MS = Number(SERVER_OPTIONS['grpc.keepalive_time_ms']) + Number(SERVER_OPTIONS['grpc.keepalive_timeout_ms']);
/** A node must stop cleanly this soon after SIGTERM. */
const STOP_DEADLINE_MS = 30_000;

export interface FollowerSlot extends ProcessSlot {
  /** The follower's --audit-file: every store open and applied seq range. */
  auditFile: string;
  /** The follower's only way to the master. */
  proxy: FaultProxy;
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
 * A master and followers as real processes in a temp directory (the harness's cluster),
 * each follower reaching the master only through its own FaultProxy and keeping an audit
 * file. Any node can be SIGKILLed, SIGSTOPped or restarted; the master always comes back
 * on the same port so proxies and writers find it.
 */
export class Cluster extends ProcessCluster<FollowerSlot> implements ScenarioCluster {
  private undo: (() => Promise<void>) | void = undefined;

  constructor(masterArgs: string[] = []) {
    super(tempDir('lr-faults-'), { master: { args: [...TEST_MASTER_ARGS, ...masterArgs] }, follower: { args: TEST_FOLLOWER_ARGS } });
  }

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(opts.masterArgs);
    try {
      c.undo = await opts.prepare?.(c.root);
      await c.startMaster();
      for (let id = 1; id <= opts.followers; id++) {
        const auditFile = path.join(c.root, `follower-${id}.audit`);
        const proxy = await FaultProxy.start(c.masterAddress);
        c.addFollower(id, { dir: opts.followerDir?.(id, c.root), via: proxy.address, start: { args: ['--audit-file', auditFile] }, auditFile, proxy });
      }
      await Promise.all([...c.followers.keys()].map((id) => c.startFollower(id)));
      return c;
    } catch (err) {
      await c.destroy();
      throw err;
    }
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

  /** Writers always write to the master's address: it is restarted on the same port. */
  writeTarget(): string {
    return this.masterAddress;
  }

  /** Digests of every running node over its read service: [name, digest, seq]. */
  digests(): Promise<{ node: string; digest: string; seq: bigint }[]> {
    const targets = [{ node: 'master', address: this.masterAddress }];
    for (const s of this.followers.values()) targets.push({ node: `follower ${s.id}`, address: s.readAddress! });
    return Promise.all(targets.map(({ node, address }) => digestOf(node, address)));
  }

  stores(): StoresView {
    return { masterDir: this.masterDir, followers: [...this.followers.values()].map((s) => ({ id: s.id, dir: s.dir, auditFile: s.auditFile })) };
  }

  /** SIGTERM every node (followers first); returns the ones that did not exit 0 in time (contract 11). */
  override stop(): Promise<string[]> {
    return super.stop(STOP_DEADLINE_MS);
  }

  /**
   * Kills whatever still runs, closes the proxies, undoes prepare, and removes the
   * directory — or, with keep (or LR_FAULTS_KEEP set), leaves it with every process's log
   * next to the stores, for a post-mortem.
   */
  async destroy({ keep = false } = {}): Promise<void> {
    await this.killAll();
    await Promise.all([...this.followers.values()].map((s) => s.proxy.close()));
    await this.undo?.();
    if (keep || process.env.LR_FAULTS_KEEP) {
      this.saveLogs();
      process.stderr.write(`kept ${this.root}\n`);
    } else {
      fs.rmSync(this.root, { recursive: true, force: true });
    }
  }
}
