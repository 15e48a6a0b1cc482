import fs from 'node:fs';
import path from 'node:path';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import type { EtcdCluster } from '../../src/tools/harness/etcd-process.js';
import type { NodeProcess } from '../../src/tools/harness/node-process.js';
import { sleep } from '../../src/tools/harness/polling.js';
import { ANY_PORT, startFollower, startMaster } from '../../src/tools/harness/start-node.js';
import { digestOf, status, waitConverged } from './cluster.js';
import type { MasterLocator } from './master-tracker.js';
import type { StoresView } from './oracles.js';
import { TEST_FOLLOWER_ARGS, TEST_MASTER_ARGS, tempDir, waitFor } from './processes.js';

/** A restarted node may find its port taken for a while (an outgoing connection's local port). */
const PORT_RETRY_MS = 30_000;
const STOP_DEADLINE_MS = 30_000;

/** What a node logs when etcd elects it (src/node/failover-agent.ts). */
export const ELECTED_LOG = 'failover: elected; this node becomes the master';
/** What a leader logs when its lease's deadline passed without a renewal. */
export const FENCED_LOG = 'failover: the leader lease could not be renewed in time; acknowledging no write until etcd confirms it';

export interface EtcdNode {
  id: number;
  /** Node 1 is the master-server the cluster starts with; the others are follower-clients. */
  tool: 'master-server' | 'follower-client';
  dir: string;
  /** Its one address in every role, kept across restarts, so writers and followers find it again. */
  address: string;
  /** The etcd endpoints this node is given (a fault proxy, say); default: the cluster's. */
  etcd?: string;
  proc?: NodeProcess;
  starts: number;
}

export interface EtcdFailoverOptions {
  etcd: EtcdCluster;
  followers: number;
  ttlSeconds: number;
  /** --ack-followers of every node (a follower uses it once elected). */
  ackFollowers: number;
  /** --cluster (a key prefix; one etcd may serve several tests). */
  name: string;
  /** The etcd endpoints node id is given; default the etcd cluster's. */
  etcdFor?: (id: number) => string | undefined;
}

/**
 * Nodes 1..n as real processes coordinated through etcd: node 1 a master-server, the rest
 * follower-clients, all with --etcd, --cluster and --lease-ttl-s; the master is whichever
 * node etcd elected. Each node keeps one data directory and one address whatever its role,
 * and is restarted the way it was first started (the operator's "start it as before").
 */
export class EtcdFailoverCluster implements MasterLocator {
  readonly nodes = new Map<number, EtcdNode>();
  private readonly procs: { name: string; proc: NodeProcess }[] = [];

  private constructor(
    readonly root: string,
    readonly opts: EtcdFailoverOptions,
  ) {}

  /** Starts node 1, waits until etcd elected it, then the followers (they find it through etcd). */
  static async start(opts: EtcdFailoverOptions): Promise<EtcdFailoverCluster> {
    const c = new EtcdFailoverCluster(tempDir('lr-failover-'), opts);
    try {
      for (let id = 1; id <= opts.followers + 1; id++) {
        c.nodes.set(id, { id, tool: id === 1 ? 'master-server' : 'follower-client', dir: path.join(c.root, `node-${id}`), address: '', etcd: opts.etcdFor?.(id), starts: 0 });
      }
      const first = await c.restart(1);
      await first.proc!.waitForLog(ELECTED_LOG, 20_000);
      await Promise.all([...c.nodes.values()].filter((n) => n.id !== 1).map((n) => c.restart(n.id)));
      return c;
    } catch (err) {
      await c.destroy({ keep: true });
      throw err;
    }
  }

  node(id: number): EtcdNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id} in this cluster`);
    return n;
  }

  nodeAddresses(): string[] {
    return [...this.nodes.values()].map((n) => n.address);
  }

  get history(): readonly { name: string; proc: NodeProcess }[] {
    return this.procs;
  }

  private args(n: EtcdNode): string[] {
    const { etcd, name, ttlSeconds, ackFollowers } = this.opts;
    return ['--etcd', n.etcd ?? etcd.endpoints, '--cluster', name, '--lease-ttl-s', String(ttlSeconds), '--ack-followers', String(ackFollowers)];
  }

  /** Starts node id on its directory and address; resolves once it listens (not once elected or following). */
  async restart(id: number): Promise<EtcdNode> {
    const n = this.node(id);
    const listen = n.address || ANY_PORT;
    const deadline = Date.now() + PORT_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        if (n.tool === 'master-server') {
          const h = await startMaster(n.dir, listen, { args: [...TEST_MASTER_ARGS, '--node-id', String(id), ...this.args(n)] });
          n.proc = h.proc;
          n.address = h.address;
        } else {
          // Only the first leader has no record in etcd to be found by; --master names it for that start.
          const master = this.node(1).address;
          const h = await startFollower(id, n.dir, master, { args: [...TEST_FOLLOWER_ARGS, '--sync', '--listen', listen, ...this.args(n)] });
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
    this.procs.push({ name: `node-${id}-${n.starts}`, proc: n.proc! });
    return n;
  }

  async kill(id: number): Promise<void> {
    const n = this.node(id);
    await n.proc?.kill('SIGKILL');
    n.proc = undefined;
  }

  /** Every running node's Status, by id (a node that does not answer is left out). */
  async statuses(): Promise<Map<number, StatusResponse__Output>> {
    const out = new Map<number, StatusResponse__Output>();
    await Promise.all(
      [...this.nodes.values()].filter((n) => n.proc && !n.proc.exited && !n.proc.paused).map(async (n) => {
        try {
          out.set(n.id, await status(n.address));
        } catch {
          // not answering now
        }
      }),
    );
    return out;
  }

  /**
   * Polls until a running node answers as master (role master, not deposed) at an epoch
   * above `above`; returns the one with the newest epoch. An old master that lost its lease
   * still answers as master of its epoch until its watch shows it the new leader.
   */
  async waitForLeader(above: number, timeoutMs = 30_000): Promise<{ id: number; epoch: number }> {
    return waitFor(
      async () => {
        let best: { id: number; epoch: number } | undefined;
        for (const [id, s] of await this.statuses()) {
          if (s.role === 'follower' || s.role === 'deposed' || s.seenEpoch > s.epoch) continue;
          if (s.epoch > above && s.epoch > (best?.epoch ?? 0)) best = { id, epoch: s.epoch };
        }
        return best;
      },
      `a master at an epoch above ${above}`,
      timeoutMs,
      50,
    );
  }

  /** Polls until every other node is a connected follower of `leader` that applied its last seq; returns that seq. */
  waitConverged(leader: number, timeoutMs = 60_000): Promise<bigint> {
    const others = [...this.nodes.keys()].filter((id) => id !== leader);
    return waitConverged(this.node(leader).address, others, timeoutMs);
  }

  /** Digests of every node (the leader's first) through their read services. */
  digests(leader: number): Promise<{ node: string; digest: string; seq: bigint }[]> {
    const ids = [leader, ...[...this.nodes.keys()].filter((id) => id !== leader)];
    return Promise.all(ids.map((id) => digestOf(`node ${id}${id === leader ? ' (leader)' : ''}`, this.node(id).address)));
  }

  /** SIGTERM every node, the leader last; returns the ones that did not exit 0 in time. */
  async stop(leader: number): Promise<string[]> {
    const bad: string[] = [];
    const order = [...[...this.nodes.values()].filter((n) => n.id !== leader), this.node(leader)];
    for (const n of order) {
      const proc = n.proc;
      if (!proc) continue;
      if (proc.paused) proc.resume();
      const timer = setTimeout(() => {
        bad.push(`node ${n.id} did not exit within ${STOP_DEADLINE_MS} ms of SIGTERM`);
        proc.signal('SIGKILL');
      }, STOP_DEADLINE_MS);
      const r = await proc.stop();
      clearTimeout(timer);
      if (r.code !== 0) bad.push(`node ${n.id} exited with ${r.code ?? r.signal}: ${proc.stderr.trim().slice(-500)}`);
      n.proc = undefined;
    }
    return bad;
  }

  /** The stopped stores the oracles read: the leader's as the master's. No audit trails (every node may lead). */
  stores(leader: number): StoresView {
    return {
      masterDir: this.node(leader).dir,
      followers: [...this.nodes.values()].filter((n) => n.id !== leader).map((n) => ({ id: n.id, dir: n.dir })),
    };
  }

  /** Kills whatever runs; removes the directory unless keep (or LR_TEST_KEEP), then every process's log is written next to the stores. */
  async destroy({ keep = false } = {}): Promise<void> {
    await Promise.all(this.procs.map((p) => p.proc.kill('SIGKILL')));
    if (keep || process.env.LR_TEST_KEEP) {
      for (const { name, proc } of this.procs) {
        fs.writeFileSync(path.join(this.root, `${name}.log`), proc.logs.map((l) => JSON.stringify(l)).join('\n') + '\n' + proc.stderr);
      }
      process.stderr.write(`kept ${this.root}\n`);
    } else {
      fs.rmSync(this.root, { recursive: true, force: true });
    }
  }
}
