import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GetResponse__Output } from '../../common/generated/levelreplicator/v1/GetResponse.js';
import { callUnary, storeClient } from '../../common/rpc-client.js';

const TOOLS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POLL_MS = 10;

type LogLine = Record<string, unknown> & { msg?: string };

export interface NodeSettings {
  /** Extra node flags for the server processes (e.g. --cpu-prof). */
  nodeArgs: string[];
  sync: boolean;
}

/**
 * One master-server or follower-client process started by the benchmark: its JSON log
 * lines (stdout) are kept with the time they arrived (performance.now(), ms).
 */
export class NodeProcess {
  readonly logs: { at: number; line: LogLine }[] = [];
  readonly exit: Promise<void>;
  exited = false;
  private stderr = '';
  private readonly child: ChildProcess;

  constructor(tool: string, args: string[], nodeArgs: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [...nodeArgs, path.join(TOOLS, `${tool}.js`), ...args], {
      env: { ...process.env, LR_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.logs.push({ at: performance.now(), line: JSON.parse(text) as LogLine });
        } catch {
          this.logs.push({ at: performance.now(), line: { msg: text } });
        }
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exit = new Promise((resolve) => this.child.on('exit', () => ((this.exited = true), resolve())));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The first log line with this msg (and when it arrived), waiting for it if need be. */
  async waitForLog(msg: string, timeoutMs = 120_000): Promise<{ at: number; line: LogLine }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs.find((l) => l.line.msg === msg);
      if (hit) return hit;
      if (this.exited) throw new Error(`process exited before logging "${msg}": ${this.stderr.trim() || JSON.stringify(this.logs.slice(-3).map((l) => l.line))}`);
      if (Date.now() > deadline) throw new Error(`no "${msg}" log line within ${timeoutMs} ms`);
      await sleep(POLL_MS);
    }
  }

  /**
   * From /proc/<pid>/status, in bytes (NaN where there is no /proc): peak resident set
   * (VmHWM) and the current anonymous part of it (RssAnon: heap and native memory, not
   * the pages of files LevelDB maps to read its tables).
   */
  memory(): { peakRss: number; rssAnon: number } {
    try {
      const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
      return { peakRss: kb('VmHWM'), rssAnon: kb('RssAnon') };
    } catch {
      return { peakRss: NaN, rssAnon: NaN };
    }
  }

  /** Samples RssAnon every `everyMs` until the returned function is called, which gives the largest sample. */
  sampleAnonRss(everyMs = 100): () => number {
    let max = this.memory().rssAnon;
    const timer = setInterval(() => (max = Math.max(max, this.memory().rssAnon)), everyMs);
    return () => {
      clearInterval(timer);
      return Math.max(max, this.memory().rssAnon);
    };
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(sig);
  }

  /** Clean stop (SIGTERM), so a CPU profile, if asked for, is written. */
  async stop(): Promise<void> {
    this.signal('SIGTERM');
    await this.exit;
  }

  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exit;
  }
}

export interface Master {
  proc: NodeProcess;
  address: string;
}

export async function startMaster(dataDir: string, s: NodeSettings, env: NodeJS.ProcessEnv = {}): Promise<Master> {
  const proc = new NodeProcess(
    'master-server',
    ['--data-dir', dataDir, '--listen', '127.0.0.1:0', s.sync ? '--sync' : '--no-sync'],
    s.nodeArgs,
    env,
  );
  const { line } = await proc.waitForLog('master listening');
  return { proc, address: line.address as string };
}

export interface Follower {
  proc: NodeProcess;
  readAddress: string;
  /** When the process was started (performance.now(), ms). */
  startedAt: number;
}

export async function startFollower(id: number, dataDir: string, master: string, s: NodeSettings, env: NodeJS.ProcessEnv = {}): Promise<Follower> {
  const startedAt = performance.now();
  const proc = new NodeProcess(
    'follower-client',
    [String(id), '--data-dir', dataDir, '--master', master, '--listen', '127.0.0.1:0', s.sync ? '--sync' : '--no-sync'],
    s.nodeArgs,
    env,
  );
  const { line } = await proc.waitForLog('follower serving reads');
  return { proc, readAddress: line.readAddress as string, startedAt };
}

/**
 * Polls every POLL_MS until each follower has applied at least seq; resolves to the
 * time (performance.now(), ms) each one was first seen there.
 */
export async function waitApplied(followers: readonly Follower[], seq: number, timeoutMs = 1_800_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const clients = followers.map((f) => storeClient(f.readAddress));
  const seenAt: number[] = followers.map(() => NaN);
  try {
    while (seenAt.some((t) => Number.isNaN(t))) {
      await Promise.all(
        followers.map(async (f, i) => {
          if (!Number.isNaN(seenAt[i])) return;
          const res = await callUnary<GetResponse__Output>((o, cb) => clients[i].Get({ key: Buffer.from('-') }, o, cb), 5_000, { role: 'follower', address: f.readAddress });
          if (Number(res.appliedSeq) >= seq) seenAt[i] = performance.now();
        }),
      );
      if (Date.now() > deadline) throw new Error(`followers did not apply seq ${seq} within ${timeoutMs} ms`);
      if (seenAt.some((t) => Number.isNaN(t))) await sleep(POLL_MS);
    }
  } finally {
    for (const c of clients) c.close();
  }
  return seenAt;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
