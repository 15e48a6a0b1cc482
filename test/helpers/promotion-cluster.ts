import fs from 'node:fs';
import path from 'node:path';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import type { NodeProcess } from '../../src/tools/harness/node-process.js';
import { sleep } from '../../src/tools/harness/polling.js';
import { ANY_PORT, startFollower, startMaster } from '../../src/tools/harness/start-node.js';
import { digestOf, status, waitConverged } from './cluster.js';
import type { MasterLocator } from './master-tracker.js';
import type { StoresView } from './oracles.js';
import { TEST_FOLLOWER_ARGS, TEST_MASTER_ARGS, tempDir } from './processes.js';
import type { ScenarioCluster } from './scenario-runner.js';

/** How long a restarted node keeps trying to get its port back (another process may hold it a while). */
const PORT_RETRY_MS = 30_000;
/** A node must stop cleanly this soon after SIGTERM (contract 11). */
const STOP_DEADLINE_MS = 30_000;

export interface PromotionNode {
  id: number;
  /**
   * How the node was first started, and so how it is restarted: "start it as before"
   * (README, runbook "the master is dead"). A master-server with --node-id comes back as
   * the master of its old epoch until the new master's notice deposes it; a follower-client
   * subscribes to the master it is given.
   */
  tool: 'master-server' | 'follower-client';
  dir: string;
  /** Its one address in either role: where it takes writes as the master and serves reads as a follower. Kept across restarts. */
  address: string;
  proc?: NodeProcess;
  starts: number;
  /** follower-client --audit-file (master-server has none). */
  auditFile: string;
  /** It has been the master: its audit trail, if any, has a gap from then on. */
  wasMaster: boolean;
}

/**
 * A cluster whose master moves: nodes 1..n as real processes, one of them the master of
 * the newest epoch, the others its followers, every one with a --node-id so a deposed
 * master rejoins as a follower on its own (src/node/node-runner.ts). Each node keeps one
 * data directory and one address for the whole run whatever its role, so the addresses
 * handed to `replication-admin promote --nodes` and to the writers stay valid.
 *
 * The cluster only records which node is the master (`promoted`); the roles themselves
 * change inside the nodes (Admin.Promote, Admin.Follow). Followers connect to the master
 * directly: there are no fault proxies, since a promotion points every follower at the new
 * master's own address.
 */
export class PromotionCluster implements ScenarioCluster, MasterLocator {
  readonly nodes = new Map<number, PromotionNode>();
  /** The node holding the newest epoch, and that epoch. */
  masterId: number;
  epoch = 1;
  private readonly procs: { name: string; proc: NodeProcess }[] = [];

  private constructor(
    readonly root: string,
    masterId: number,
  ) {
    this.masterId = masterId;
  }

  /** The master (master-server --node-id masterId) and `followers` follower-clients numbered from 1. */
  static async start(opts: { followers: number; masterId: number }): Promise<PromotionCluster> {
    const c = new PromotionCluster(tempDir('lr-faults-'), opts.masterId);
    try {
      c.add(opts.masterId, 'master-server').wasMaster = true;
      await c.restart(opts.masterId);
      for (let id = 1; id <= opts.followers; id++) c.add(id, 'follower-client');
      await Promise.all(c.followers().map((n) => c.restart(n.id)));
      return c;
    } catch (err) {
      await c.destroy();
      throw err;
    }
  }

  private add(id: number, tool: PromotionNode['tool']): PromotionNode {
    const node: PromotionNode = { id, tool, dir: path.join(this.root, `node-${id}`), address: '', starts: 0, auditFile: path.join(this.root, `node-${id}.audit`), wasMaster: false };
    this.nodes.set(id, node);
    return node;
  }

  node(id: number): PromotionNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id} in this cluster`);
    return n;
  }

  get master(): PromotionNode {
    return this.node(this.masterId);
  }

  get masterAddress(): string {
    return this.master.address;
  }

  /** Every node but the master, by id. */
  followers(): PromotionNode[] {
    return [...this.nodes.values()].filter((n) => n.id !== this.masterId).sort((a, b) => a.id - b.id);
  }

  get history(): readonly { name: string; proc: NodeProcess }[] {
    return this.procs;
  }

  nodeAddresses(): string[] {
    return [...this.nodes.values()].map((n) => n.address);
  }

  /** Writers follow the master across promotions (MasterTracker over every node's address). */
  writeTarget(): MasterLocator {
    return this;
  }

  status(address = this.masterAddress): Promise<StatusResponse__Output> {
    return status(address);
  }

  /** Records a promotion: node id is the master of `epoch` from now on. */
  promoted(id: number, epoch: number): void {
    this.masterId = id;
    this.epoch = epoch;
    this.node(id).wasMaster = true;
  }

  async kill(id: number): Promise<void> {
    const n = this.node(id);
    await n.proc?.kill('SIGKILL');
    n.proc = undefined;
  }

  /**
   * Starts node id on its data directory and its address, the way it was first started (a
   * follower-client is pointed at the current master). Resolves once it serves.
   */
  async restart(id: number): Promise<PromotionNode> {
    const n = this.node(id);
    const listen = n.address || ANY_PORT;
    const deadline = Date.now() + PORT_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        if (n.tool === 'master-server') {
          const h = await startMaster(n.dir, listen, { args: [...TEST_MASTER_ARGS, '--node-id', String(id)] });
          n.proc = h.proc;
          n.address = h.address;
        } else {
          // A later --listen wins over the harness's port 0.
          const args = [...TEST_FOLLOWER_ARGS, '--audit-file', n.auditFile, '--listen', listen];
          const h = await startFollower(id, n.dir, this.masterAddress, { args });
          n.proc = h.proc;
          n.address = h.readAddress;
        }
        break;
      } catch (err) {
        if (Date.now() > deadline || !/ADDRESS_IN_USE/.test((err as Error).message)) throw err;
        await sleep(Math.min(250 * attempt, 2_000));
      }
    }
    n.starts++;
    this.procs.push({ name: `${n.tool === 'master-server' ? 'master' : 'follower'}-${id}-${n.starts}`, proc: n.proc });
    return n;
  }

  /** Frozen nodes run again, dead ones are restarted (the scenario normally leaves none). */
  async healAll(): Promise<void> {
    for (const n of this.nodes.values()) if (n.proc?.paused) n.proc.resume();
    for (const n of this.nodes.values()) if (!n.proc || n.proc.exited) await this.restart(n.id);
  }

  waitConverged(timeoutMs = 60_000): Promise<bigint> {
    return waitConverged(this.masterAddress, this.followers().map((n) => n.id), timeoutMs);
  }

  digests(): Promise<{ node: string; digest: string; seq: bigint }[]> {
    const all = [this.master, ...this.followers()];
    return Promise.all(all.map((n) => digestOf(`node ${n.id}${n.id === this.masterId ? ' (master)' : ''}`, n.address)));
  }

  /** SIGTERM every node, followers first; returns the ones that did not exit 0 in time. */
  async stop(): Promise<string[]> {
    const bad: string[] = [];
    for (const n of [...this.followers(), this.master]) {
      const proc = n.proc;
      if (!proc) continue;
      const timer = setTimeout(() => {
        bad.push(`node ${n.id} did not exit within ${STOP_DEADLINE_MS} ms of SIGTERM`);
        proc.signal('SIGKILL');
      }, STOP_DEADLINE_MS);
      const r = await proc.stop();
      clearTimeout(timer);
      if (r.code !== 0) bad.push(`node ${n.id} exited with ${r.code ?? r.signal}: ${proc.stderr.trim()}`);
      n.proc = undefined;
    }
    return bad;
  }

  /** The final master's store and every follower's; only a node that was never the master has a complete audit trail. */
  stores(): StoresView {
    return {
      masterDir: this.master.dir,
      followers: this.followers().map((n) => ({ id: n.id, dir: n.dir, auditFile: n.tool === 'follower-client' && !n.wasMaster ? n.auditFile : undefined })),
    };
  }

  /** Kills whatever runs and removes the directory, or keeps it (keep, LR_FAULTS_KEEP) with every process's log. */
  async destroy({ keep = false } = {}): Promise<void> {
    await Promise.all(this.procs.map((p) => p.proc.kill('SIGKILL')));
    if (keep || process.env.LR_FAULTS_KEEP) {
      for (const { name, proc } of this.procs) {
        fs.writeFileSync(path.join(this.root, `${name}.log`), proc.logs.map((l) => JSON.stringify(l)).join('\n') + '\n' + proc.stderr);
      }
      process.stderr.write(`kept ${this.root}\n`);
    } else {
      fs.rmSync(this.root, { recursive: true, force: true });
    }
  }
}
