import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NodeProcess } from './node-process.js';
import { sleep } from './polling.js';
import { ANY_PORT, mergeStart, startFollower, startMaster, type NodeStart } from './start-node.js';

/** A fresh directory under the system's temp directory. */
export function tempDir(prefix = 'lr-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * How long a restarted master keeps trying to get its old port back. On a shared machine
 * another process can take it in between (an outgoing connection's local port, say) and
 * hold it for a while; everything that knows the master's address needs that port.
 */
const PORT_RETRY_MS = 30_000;

export interface FollowerSlot {
  id: number;
  dir: string;
  /** The address it reaches the master by (a fault proxy, say); default: the master's own. */
  via?: string;
  /** How this follower starts, laid over the cluster's follower settings. */
  start: NodeStart;
  proc?: NodeProcess;
  readAddress?: string;
  metricsAddress?: string;
  /** How many times it was started. */
  starts: number;
}

export interface ClusterSettings {
  /** How every node starts: log level, node flags, launcher, environment, ready timeout. */
  node?: NodeStart;
  /** How the master differs (its flags besides --data-dir and --listen, say). */
  master?: NodeStart;
  /** How every follower differs (flags besides the id, --data-dir, --master and --listen). */
  follower?: NodeStart;
}

/** What addFollower takes: where the follower keeps its store, and whatever a subclass's slots add. */
export type FollowerInit<S extends FollowerSlot> = Partial<Pick<FollowerSlot, 'dir' | 'via' | 'start'>> & Omit<S, keyof FollowerSlot>;

/**
 * A master and followers as real processes under one root directory (the master's store
 * in <root>/master, follower n's in <root>/follower-n unless told otherwise). Any node can
 * be killed, frozen or restarted on the same data directory; a restarted master comes back
 * on the same port, so followers and writers find it again. Every process ever started is
 * kept (history), so nothing is left running and every log can be read afterwards.
 */
export class Cluster<S extends FollowerSlot = FollowerSlot> {
  readonly masterDir: string;
  master?: NodeProcess;
  masterAddress = '';
  masterMetricsAddress?: string;
  masterStarts = 0;
  readonly followers = new Map<number, S>();
  private readonly procs: { name: string; proc: NodeProcess }[] = [];

  constructor(
    readonly root: string,
    protected readonly settings: ClusterSettings = {},
  ) {
    this.masterDir = path.join(root, 'master');
  }

  /** Every process started so far, with a name like follower-2-3 (third start of follower 2). */
  get history(): readonly { name: string; proc: NodeProcess }[] {
    return this.procs;
  }

  slot(id: number): S {
    const s = this.followers.get(id);
    if (!s) throw new Error(`no follower ${id} in this cluster`);
    return s;
  }

  /** Adds follower id to the cluster without starting it. */
  addFollower(id: number, init: FollowerInit<S>): S {
    if (this.followers.has(id)) throw new Error(`follower ${id} is already in this cluster`);
    const slot = { ...init, id, dir: init.dir ?? path.join(this.root, `follower-${id}`), start: init.start ?? {}, starts: 0 } as S;
    this.followers.set(id, slot);
    return slot;
  }

  /** Starts (or restarts) the master; extra applies to this start only. Resolves once it listens. */
  async startMaster(extra: NodeStart = {}): Promise<NodeProcess> {
    const opts = mergeStart(mergeStart(this.settings.node, this.settings.master), extra);
    const deadline = Date.now() + PORT_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const h = await startMaster(this.masterDir, this.masterAddress || ANY_PORT, opts);
        this.procs.push({ name: `master-${this.masterStarts + 1}`, proc: h.proc });
        this.master = h.proc;
        this.masterAddress = h.address;
        this.masterMetricsAddress = h.metricsAddress;
        this.masterStarts++;
        return h.proc;
      } catch (err) {
        if (Date.now() > deadline || !/ADDRESS_IN_USE/.test((err as Error).message)) throw err;
        await sleep(Math.min(250 * attempt, 2_000));
      }
    }
  }

  async killMaster(): Promise<void> {
    await this.master?.kill('SIGKILL');
    this.master = undefined;
  }

  /** Starts (or restarts, on the same data directory) follower id. Resolves once it serves reads. */
  async startFollower(id: number): Promise<S> {
    const s = this.slot(id);
    const opts = mergeStart(mergeStart(this.settings.node, this.settings.follower), s.start);
    const h = await startFollower(id, s.dir, s.via ?? this.masterAddress, opts);
    this.procs.push({ name: `follower-${id}-${s.starts + 1}`, proc: h.proc });
    s.proc = h.proc;
    s.readAddress = h.readAddress;
    s.metricsAddress = h.metricsAddress;
    s.starts++;
    return s;
  }

  async killFollower(id: number): Promise<void> {
    const s = this.slot(id);
    await s.proc?.kill('SIGKILL');
    s.proc = undefined;
  }

  /**
   * SIGTERM every node, followers first (a frozen one is resumed so it can act on it), and
   * waits for each. Returns what went wrong: a node that exited other than 0, or one still
   * running deadlineMs after its SIGTERM (it is then killed).
   */
  async stop(deadlineMs = Infinity): Promise<string[]> {
    const bad: string[] = [];
    const stopOne = async (name: string, proc: NodeProcess | undefined) => {
      if (!proc) return;
      const timer = Number.isFinite(deadlineMs)
        ? setTimeout(() => {
            bad.push(`${name} did not exit within ${deadlineMs} ms of SIGTERM`);
            proc.signal('SIGKILL');
          }, deadlineMs)
        : undefined;
      const r = await proc.stop();
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

  /** SIGKILL whatever still runs. */
  async killAll(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.proc.kill('SIGKILL')));
  }

  /** Writes every process's log and stderr to <root>/<name>.log, next to the stores, for a post-mortem. */
  saveLogs(): void {
    for (const { name, proc } of this.procs) {
      fs.writeFileSync(path.join(this.root, `${name}.log`), proc.logs.map((l) => JSON.stringify(l)).join('\n') + '\n' + proc.stderr);
    }
  }
}
