import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { connectEtcd } from '../../src/coordination/etcd-connection.js';
import { readLeader } from '../../src/coordination/leader-watch.js';
import type { LeaderRecord } from '../../src/coordination/records.js';
import type { EpochStart__Output } from '../../src/wire/generated/levelreplicator/v1/EpochStart.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import { EtcdCluster } from '../../src/tools/harness/etcd-process.js';
import type { NodeProcess } from '../../src/tools/harness/node-process.js';
import { sleep } from '../../src/tools/harness/polling.js';
import { ANY_PORT, startFollower, startMaster } from '../../src/tools/harness/start-node.js';
import { roleOf } from '../../src/tools/master-finder.js';
import { digestOf, status, waitConverged } from './cluster.js';
import type { Election, Freeze } from './ack-epoch-oracles.js';
import type { MasterLocator } from './master-tracker.js';
import type { StoresView } from './oracles.js';
import { TEST_FOLLOWER_ARGS, TEST_MASTER_ARGS, tempDir, waitFor } from './processes.js';
import type { ScenarioCluster } from './scenario-runner.js';

/** What a node logs once etcd elected it (src/node/failover-agent.ts); the line carries the epoch. */
export const ELECTED_MSG = 'failover: elected; this node becomes the master';
/** A restarted node may find its port taken a while (another process's outgoing connection). */
const PORT_RETRY_MS = 30_000;
/** A node must stop cleanly this soon after SIGTERM (contract 11). */
const STOP_DEADLINE_MS = 30_000;
/** How long the first master-server may take to win the first election. */
const FIRST_ELECTION_MS = 30_000;

export interface FailoverNode {
  id: number;
  /** How it was first started, and so how it is restarted ("start it as before"). */
  tool: 'master-server' | 'follower-client';
  dir: string;
  /** Its one address in every role, kept across restarts, so writers and followers find it again. */
  address: string;
  proc?: NodeProcess;
  starts: number;
  /** follower-client --audit-file; complete only while the node was never elected. */
  auditFile?: string;
}

export interface FailoverClusterOptions {
  followers: number;
  ttlSeconds: number;
  /** --ack-followers of every node: whichever is elected acknowledges with that many followers. */
  ackFollowers: number;
}

/**
 * The fault suite's cluster for automatic failover: a 3-member etcd from the harness and
 * nodes coordinated through it. Node 1 is a master-server, the others follower-clients
 * (--sync), every one with --etcd, its own --cluster name, --lease-ttl-s and --ack-followers.
 * The master is whoever etcd elected: the cluster never decides it, it only looks (each
 * node's Status, and etcd's leader key). Each node keeps one directory and one address for
 * the whole run, and a killed one is started again with the flags of its first start (a
 * follower-client still names node 1 with --master: with --etcd the leader in etcd wins).
 */
export class FailoverCluster implements ScenarioCluster, MasterLocator {
  readonly nodes = new Map<number, FailoverNode>();
  /** The master the end of the run settled on (waitConverged): what digests, stop and stores use. */
  masterId = 1;
  /** That master's epoch history, read before the nodes stop. */
  finalEpochs: EpochStart__Output[] = [];
  readonly name = `faults-${crypto.randomUUID().slice(0, 8)}`;
  /** Every SIGSTOP of a node: its address, and when it was frozen and resumed (Date.now() ms). */
  readonly freezes: (Freeze & { id: number })[] = [];
  private readonly procs: { name: string; proc: NodeProcess }[] = [];

  private constructor(
    readonly root: string,
    readonly etcd: EtcdCluster,
    readonly opts: FailoverClusterOptions,
  ) {}

  static async start(opts: FailoverClusterOptions): Promise<FailoverCluster> {
    const root = tempDir('lr-faults-');
    fs.mkdirSync(path.join(root, 'etcd'));
    // On failure the harness kills what it started and keeps the directory: its logs say why.
    const c = new FailoverCluster(root, await EtcdCluster.start({ members: 3, root: path.join(root, 'etcd') }), opts);
    try {
      for (let id = 1; id <= opts.followers + 1; id++) {
        const tool = id === 1 ? 'master-server' : 'follower-client';
        c.nodes.set(id, { id, tool, dir: path.join(root, `node-${id}`), address: '', starts: 0, auditFile: tool === 'follower-client' ? path.join(root, `node-${id}.audit`) : undefined });
      }
      // The first leader of a cluster is a master-server: the followers start once it leads.
      const first = await c.restart(1);
      await first.proc!.waitForLog(ELECTED_MSG, FIRST_ELECTION_MS);
      await Promise.all([...c.nodes.values()].filter((n) => n.id !== 1).map((n) => c.restart(n.id)));
      return c;
    } catch (err) {
      await c.destroy();
      throw err;
    }
  }

  node(id: number): FailoverNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id} in this cluster`);
    return n;
  }

  get master(): FailoverNode {
    return this.node(this.masterId);
  }

  nodeAddresses(): string[] {
    return [...this.nodes.values()].map((n) => n.address);
  }

  get history(): readonly { name: string; proc: NodeProcess }[] {
    return this.procs;
  }

  /** Writers follow the master as a client given every address does (master-tracker.ts). */
  writeTarget(): MasterLocator {
    return this;
  }

  /** Nodes that run and are not frozen. */
  live(): FailoverNode[] {
    return [...this.nodes.values()].filter((n) => n.proc && !n.proc.exited && !n.proc.paused);
  }

  /** Every node etcd ever elected, with the epoch and when (its log line's time, Date.now() ms), oldest first. */
  elections(): Election[] {
    const out: Election[] = [];
    for (const { name, proc } of this.procs) {
      const id = Number(/-(\d+)-\d+$/.exec(name)![1]);
      for (const l of proc.logs) if (l.msg === ELECTED_MSG) out.push({ id, epoch: Number(l.epoch), at: Number(l.time) });
    }
    return out.sort((a, b) => a.at - b.at);
  }

  /** The leader etcd names now (undefined: none), read through the members that run. */
  async etcdLeader(): Promise<LeaderRecord | undefined> {
    const conn = connectEtcd({ endpoints: this.etcd.runningEndpoints, cluster: this.name, requestTimeoutMs: 3_000 });
    try {
      return await readLeader(conn);
    } finally {
      conn.close();
    }
  }

  /**
   * The node that answers as the master (not deposed, not behind a newer epoch it saw) at
   * the newest epoch among the live nodes, if one does; what a client given every address finds.
   */
  async answeringMaster(): Promise<{ id: number; epoch: number; status: StatusResponse__Output } | undefined> {
    const answers = await Promise.all(this.live().map(async (n) => ({ id: n.id, s: await status(n.address).catch(() => undefined) })));
    let best: { id: number; epoch: number; status: StatusResponse__Output } | undefined;
    for (const { id, s } of answers) {
      if (s && roleOf(s) === 'master' && (!best || s.epoch > best.epoch)) best = { id, epoch: s.epoch, status: s };
    }
    return best;
  }

  /**
   * Polls until a leader takes writes: etcd names a node with an epoch above `above`, and
   * that node answers as the master of that epoch. Returns it.
   */
  waitLeader(above: number, what: string, timeoutMs = 45_000): Promise<{ id: number; epoch: number }> {
    return waitFor(
      async () => {
        const leader = await this.etcdLeader();
        if (!leader?.epoch || leader.epoch <= above) return undefined;
        const m = await this.answeringMaster();
        return m && m.id === leader.nodeId && m.epoch === leader.epoch ? { id: m.id, epoch: m.epoch } : undefined;
      },
      what,
      timeoutMs,
      50,
    );
  }

  /** The current master's Status (the runner's and waitCaughtUp's view); throws while no node answers as master. */
  async status(): Promise<StatusResponse__Output> {
    const m = await this.answeringMaster();
    if (!m) throw new Error('no node answers as the master now');
    return m.status;
  }

  /** SIGSTOP node id, recorded (the oracles excuse answers that left it right after it resumed). */
  pause(id: number): void {
    const n = this.node(id);
    n.proc!.pause();
    this.freezes.push({ id, address: n.address, from: Date.now() });
  }

  /** SIGCONT node id after pause(). */
  resume(id: number): void {
    this.node(id).proc!.resume();
    for (const f of this.freezes) if (f.id === id && f.to === undefined) f.to = Date.now();
  }

  async kill(id: number): Promise<void> {
    const n = this.node(id);
    await n.proc?.kill('SIGKILL');
    n.proc = undefined;
  }

  private args(): string[] {
    const { ttlSeconds, ackFollowers } = this.opts;
    return ['--etcd', this.etcd.endpoints, '--cluster', this.name, '--lease-ttl-s', String(ttlSeconds), '--ack-followers', String(ackFollowers)];
  }

  /** Starts node id on its directory and address with the flags of its first start; resolves once it serves. */
  async restart(id: number): Promise<FailoverNode> {
    const n = this.node(id);
    const listen = n.address || ANY_PORT;
    const deadline = Date.now() + PORT_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        if (n.tool === 'master-server') {
          const h = await startMaster(n.dir, listen, { args: [...TEST_MASTER_ARGS, '--node-id', String(id), ...this.args()] });
          n.proc = h.proc;
          n.address = h.address;
        } else {
          // A later --listen wins over the harness's port 0.
          const args = [...TEST_FOLLOWER_ARGS, '--sync', '--audit-file', n.auditFile!, '--listen', listen, ...this.args()];
          const h = await startFollower(id, n.dir, this.node(1).address, { args });
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
    // Names as the runner's contract 9 check expects: a follower-client's start with "follower".
    this.procs.push({ name: `${n.tool === 'master-server' ? 'master' : 'follower'}-${id}-${n.starts}`, proc: n.proc! });
    return n;
  }

  /** Every fault ends: dead etcd members first (a node starting needs etcd), then frozen nodes run and dead ones restart. */
  async healAll(): Promise<void> {
    for (let i = 0; i < this.etcd.members.length; i++) if (!this.etcd.member(i).running) await this.etcd.restartMember(i);
    for (const n of this.nodes.values()) if (n.proc?.paused) this.resume(n.id);
    for (const n of this.nodes.values()) if (!n.proc || n.proc.exited) await this.restart(n.id);
  }

  /**
   * Settles the end of the run: a leader that etcd names and that answers as the master,
   * every other node its connected follower at its last seq. Keeps that master (and its
   * epoch history) for digests, stop, stores and the oracles.
   */
  async waitConverged(timeoutMs = 60_000): Promise<bigint> {
    const leader = await this.waitLeader(0, 'a leader that etcd names and that answers as the master', timeoutMs);
    this.masterId = leader.id;
    const others = [...this.nodes.keys()].filter((id) => id !== leader.id);
    const seq = await waitConverged(this.master.address, others, timeoutMs);
    this.finalEpochs = (await status(this.master.address)).epochs;
    return seq;
  }

  digests(): Promise<{ node: string; digest: string; seq: bigint }[]> {
    const ids = [this.masterId, ...[...this.nodes.keys()].filter((id) => id !== this.masterId)];
    return Promise.all(ids.map((id) => digestOf(`node ${id}${id === this.masterId ? ' (master)' : ''}`, this.node(id).address)));
  }

  /** SIGTERM every node, the master last (a follower stopping first cannot start an election); returns the ones that did not exit 0 in time. */
  async stop(): Promise<string[]> {
    const bad: string[] = [];
    for (const n of [...[...this.nodes.values()].filter((x) => x.id !== this.masterId), this.master]) {
      const proc = n.proc;
      if (!proc) continue;
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

  /** The final master's store and every other node's; only a follower-client never elected has a complete audit trail. */
  stores(): StoresView {
    const elected = new Set(this.elections().map((e) => e.id));
    return {
      masterDir: this.master.dir,
      followers: [...this.nodes.values()].filter((n) => n.id !== this.masterId).map((n) => ({ id: n.id, dir: n.dir, auditFile: elected.has(n.id) ? undefined : n.auditFile })),
    };
  }

  /** Kills whatever runs, etcd too; removes the directory, or keeps it (keep, LR_FAULTS_KEEP) with every log. */
  async destroy({ keep = false } = {}): Promise<void> {
    await Promise.all(this.procs.map((p) => p.proc.kill('SIGKILL')));
    await this.etcd.destroy();
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
