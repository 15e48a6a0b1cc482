import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { ExitStatus } from './node-process.js';

/** The etcd binary: LR_ETCD_BIN, or etcd on PATH (Debian's etcd-server package in CI). */
export function etcdBinary(): string {
  return process.env.LR_ETCD_BIN || 'etcd';
}

/** How long one health probe may take: a frozen member never answers, and must read as unhealthy. */
const HEALTH_PROBE_MS = 1_000;

/** Members still running when this process exits are killed, so a crashed test leaves no etcd behind. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Where a member listens and keeps its data; fixed for its life, so a restart finds its peers and they find it. */
export interface EtcdMemberSpec {
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  /** Its stdout and stderr, appended to across restarts. */
  logFile: string;
}

/**
 * One etcd server process of a test cluster. Its output goes to its log file (etcd logs a
 * lot at info level; a test prints the file's tail only when something fails). It can be
 * frozen (SIGSTOP), resumed, stopped, killed and started again on the same data directory
 * and ports.
 */
export class EtcdMember {
  private child?: ChildProcess;
  private exitPromise?: Promise<ExitStatus>;
  /** How many times it was started. */
  starts = 0;
  /** Frozen by pause() and not yet resumed. */
  paused = false;
  /** Where in the log file the current (or last) start's output begins. */
  private logStart = 0;

  constructor(readonly spec: EtcdMemberSpec) {}

  get name(): string {
    return this.spec.name;
  }

  get clientUrl(): string {
    return `http://127.0.0.1:${this.spec.clientPort}`;
  }

  get peerUrl(): string {
    return `http://127.0.0.1:${this.spec.peerPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Started and not exited (a frozen member is running). */
  get running(): boolean {
    return this.child !== undefined;
  }

  /**
   * Spawns etcd. `initialCluster` (name=peerUrl,...) and `token` only matter on a first
   * start: on a data directory that has a member already, etcd takes both from its WAL.
   * `extraArgs` come last, so they can override the defaults.
   */
  spawn(initialCluster: string, token: string, extraArgs: string[]): void {
    if (this.child) throw new Error(`etcd member ${this.name} is already running (pid ${this.child.pid})`);
    const { name, dataDir, logFile } = this.spec;
    const args = [
      '--name', name,
      '--data-dir', dataDir,
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', this.peerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      ...extraArgs,
    ];
    this.starts++;
    this.logStart = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
    fs.appendFileSync(logFile, `--- start ${this.starts} of ${name}: ${etcdBinary()} ${args.join(' ')}\n`);
    const out = fs.openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(etcdBinary(), args, { stdio: ['ignore', out, out] });
    } finally {
      fs.closeSync(out); // the child has its own copy
    }
    this.child = child;
    this.paused = false;
    live.add(child);
    this.exitPromise = new Promise((resolve) => {
      const done = (status: ExitStatus) => {
        live.delete(child);
        if (this.child === child) {
          this.child = undefined;
          this.paused = false;
        }
        resolve(status);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      // No such binary: 'error' comes instead of 'exit'.
      child.once('error', (err) => {
        fs.appendFileSync(logFile, `--- could not start ${etcdBinary()}: ${err.message} (install etcd, e.g. Debian's etcd-server package, or set LR_ETCD_BIN)\n`);
        done({ code: null, signal: null });
      });
    });
  }

  /** Resolves when the current process has exited (at once if none runs). */
  exited(): Promise<ExitStatus> {
    return this.exitPromise ?? Promise.resolve({ code: null, signal: null });
  }

  /** Whether it answers /health with {"health":"true"}: it serves and its cluster has a leader. */
  async healthy(): Promise<boolean> {
    if (!this.child || this.paused) return false;
    try {
      const res = await fetch(`${this.clientUrl}/health`, { signal: AbortSignal.timeout(HEALTH_PROBE_MS) });
      const body = (await res.json()) as { health?: unknown };
      return res.ok && String(body.health) === 'true';
    } catch {
      return false;
    }
  }

  /** Its raft member id and the id of the leader it knows (etcd's JSON gateway); undefined if it does not answer. */
  async status(): Promise<{ memberId: string; leaderId: string } | undefined> {
    if (!this.child || this.paused) return undefined;
    try {
      const res = await fetch(`${this.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(HEALTH_PROBE_MS) });
      const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
      const memberId = body.header?.member_id;
      return res.ok && memberId && body.leader ? { memberId, leaderId: body.leader } : undefined;
    } catch {
      return undefined;
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  /** SIGSTOP: it keeps its sockets open and answers nothing, as a hung server would. */
  pause(): void {
    if (!this.child) return;
    this.signal('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    this.signal('SIGCONT');
    this.paused = false;
  }

  /** Sends sig (SIGKILL by default) and waits for the exit; a frozen member is resumed so it can act on a catchable one. */
  async kill(sig: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> {
    if (!this.child) return { code: null, signal: null };
    const exit = this.exited();
    this.signal(sig);
    if (this.paused && sig !== 'SIGKILL') this.resume();
    return exit;
  }

  /** SIGTERM, then SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    if (!this.child) return { code: null, signal: null };
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.kill('SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  }

  /** What the current (or last) start has logged so far. */
  logSinceStart(): string {
    try {
      const fd = fs.openSync(this.spec.logFile, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.max(0, size - this.logStart));
        fs.readSync(fd, buf, 0, buf.length, this.logStart);
        return buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return '';
    }
  }

  /** The last lines of its log file, for a failure message. */
  logTail(lines = 30): string {
    let text: string;
    try {
      text = fs.readFileSync(this.spec.logFile, 'utf8');
    } catch {
      return `(no log file ${this.spec.logFile})`;
    }
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }
}
