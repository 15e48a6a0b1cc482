import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './cluster.js';
import { EtcdMember } from './etcd-member.js';
import { sleep } from './polling.js';

export { EtcdMember, etcdBinary } from './etcd-member.js';

/**
 * Real etcd servers for the tests, the fault suite and the bench: one member or a cluster of
 * N on loopback, each on ports picked free just before its first start, each member's data
 * directory and log file under one temp directory.
 */
export interface EtcdClusterOptions {
  /** How many members (1, or 3 to survive the loss of one). Default 1. */
  members?: number;
  /** The directory for data and logs; default a fresh temp directory, removed by destroy(). */
  root?: string;
  /**
   * Raft timing. etcd's defaults (100 ms heartbeat, 1 s election timeout) make a member that
   * lost its leader wait a second or more before electing another; loopback needs far less.
   */
  heartbeatMs?: number;
  electionTimeoutMs?: number;
  /** How long starting (or restarting) may take before it fails, quoting the logs. */
  readyTimeoutMs?: number;
  /** More etcd flags for every member, after the harness's own. */
  args?: string[];
}

const DEFAULT_HEARTBEAT_MS = 50;
const DEFAULT_ELECTION_TIMEOUT_MS = 500;
const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** A fresh cluster is tried again on new ports this many times when a port was taken in between. */
const PORT_ATTEMPTS = 3;
/** How long a restarted member keeps trying to get its ports back (its peers know them). */
const PORT_RETRY_MS = 30_000;
const HEALTH_POLL_MS = 50;

/** Ports free right now on 127.0.0.1, all different: each is held until all are found. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** The member's latest start failed because one of its ports was taken. */
function addressInUse(member: EtcdMember): boolean {
  return !member.running && /address already in use/.test(member.logSinceStart());
}

export class EtcdCluster {
  readonly members: EtcdMember[] = [];
  private readonly token = `lr-${crypto.randomUUID()}`;
  private readonly extraArgs: string[];
  private readonly readyTimeoutMs: number;

  private constructor(
    readonly root: string,
    private readonly ownsRoot: boolean,
    opts: EtcdClusterOptions,
  ) {
    this.readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.extraArgs = [
      '--heartbeat-interval', String(opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS),
      '--election-timeout', String(opts.electionTimeoutMs ?? DEFAULT_ELECTION_TIMEOUT_MS),
      ...(opts.args ?? []),
    ];
  }

  /** Starts every member and resolves once each answers /health; fails with the members' log tails. */
  static async start(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const ownsRoot = opts.root === undefined;
    const root = opts.root ?? tempDir('lr-etcd-');
    const cluster = new EtcdCluster(root, ownsRoot, opts);
    try {
      await cluster.startFresh(opts.members ?? 1);
      return cluster;
    } catch (err) {
      await cluster.destroy({ keepRoot: true });
      throw err;
    }
  }

  /** The client URLs of every member, as a comma list (what --etcd takes). */
  get endpoints(): string {
    return this.members.map((m) => m.clientUrl).join(',');
  }

  /** The client URLs of the members that run now. */
  get runningEndpoints(): string {
    return this.members.filter((m) => m.running).map((m) => m.clientUrl).join(',');
  }

  member(i: number): EtcdMember {
    const m = this.members[i];
    if (!m) throw new Error(`no etcd member ${i} (the cluster has ${this.members.length})`);
    return m;
  }

  /** Polls /health of the given members (default: every running one) until each answers healthy. */
  async waitHealthy(which: number[] = this.runningIndexes(), timeoutMs = this.readyTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(which.map((i) => this.member(i).healthy()));
      if (states.every(Boolean)) return;
      const gone = which.filter((i) => !this.member(i).running);
      if (gone.length > 0) throw new Error(`etcd member ${gone.map((i) => this.member(i).name).join(', ')} exited before it was healthy\n${this.logTails()}`);
      if (Date.now() > deadline) {
        const sick = which.filter((_, k) => !states[k]).map((i) => this.member(i).name);
        throw new Error(`timed out after ${timeoutMs} ms waiting for etcd ${sick.join(', ')} to be healthy\n${this.logTails()}`);
      }
      await sleep(HEALTH_POLL_MS);
    }
  }

  /** The index of the member that is raft leader now, as the running members agree; undefined while they do not. */
  async leaderIndex(): Promise<number | undefined> {
    const statuses = await Promise.all(this.members.map((m) => m.status()));
    const leaders = new Set(statuses.flatMap((s) => (s ? [s.leaderId] : [])));
    if (leaders.size !== 1) return undefined;
    const [leaderId] = leaders;
    const i = statuses.findIndex((s) => s?.memberId === leaderId);
    return i >= 0 ? i : undefined;
  }

  /** SIGKILL member i: it loses nothing it acknowledged (etcd fsyncs), and its peers see it vanish. */
  async killMember(i: number): Promise<void> {
    await this.member(i).kill('SIGKILL');
  }

  /** SIGTERM member i and wait for it. */
  async stopMember(i: number): Promise<void> {
    await this.member(i).stop();
  }

  /** SIGSTOP member i: its connections stay open and nothing on them is answered. */
  pauseMember(i: number): void {
    this.member(i).pause();
  }

  resumeMember(i: number): void {
    this.member(i).resume();
  }

  /**
   * Starts member i again on its data directory and ports (stopping it first if it runs) and
   * waits until it is healthy: with the rest of a cluster down it cannot be, so pass
   * waitHealthy: false to start several before waiting.
   */
  async restartMember(i: number, { waitHealthy = true } = {}): Promise<void> {
    const m = this.member(i);
    if (m.running) await m.stop();
    const deadline = Date.now() + PORT_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      m.spawn(this.initialCluster(), this.token, this.extraArgs);
      if (!waitHealthy) return;
      try {
        await this.waitHealthy([i]);
        return;
      } catch (err) {
        // Another process took one of its ports meanwhile: wait for it to let go.
        if (!addressInUse(m) || Date.now() > deadline) throw err;
        await sleep(Math.min(250 * attempt, 2_000));
      }
    }
  }

  /** SIGTERM every member and wait for each (SIGKILL after graceMs); data and logs stay. */
  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop(graceMs)));
  }

  /** Kills every member, and removes the temp directory this cluster made unless keepRoot. */
  async destroy({ keepRoot = false } = {}): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill('SIGKILL')));
    if (this.ownsRoot && !keepRoot) fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** The tail of every member's log, headed by its name: what a failed test prints. */
  logTails(lines = 20): string {
    return this.members.map((m) => `--- etcd ${m.name} (${m.spec.logFile}):\n${m.logTail(lines)}`).join('\n');
  }

  private runningIndexes(): number[] {
    return this.members.flatMap((m, i) => (m.running ? [i] : []));
  }

  private initialCluster(): string {
    return this.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  }

  /**
   * A new cluster on new ports: ports are found free and then released before etcd binds
   * them, so another process can take one in between; then every member starts over on
   * other ports with empty data directories.
   */
  private async startFresh(count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 1) throw new Error(`an etcd cluster needs at least one member, got ${count}`);
    for (let attempt = 1; ; attempt++) {
      const ports = await freePorts(2 * count);
      this.members.length = 0;
      for (let i = 0; i < count; i++) {
        const name = `etcd-${i}`;
        const dataDir = path.join(this.root, name);
        fs.rmSync(dataDir, { recursive: true, force: true });
        this.members.push(new EtcdMember({ name, dataDir, clientPort: ports[2 * i], peerPort: ports[2 * i + 1], logFile: path.join(this.root, `${name}.log`) }));
      }
      for (const m of this.members) m.spawn(this.initialCluster(), this.token, this.extraArgs);
      try {
        await this.waitHealthy();
        return;
      } catch (err) {
        const retry = attempt < PORT_ATTEMPTS && this.members.some(addressInUse);
        await Promise.all(this.members.map((m) => m.kill('SIGKILL')));
        if (!retry) throw err;
      }
    }
  }
}
