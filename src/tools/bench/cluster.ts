import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GetResponse__Output } from '../../wire/generated/levelreplicator/v1/GetResponse.js';
import { ErrorCode, isReplicatorError } from '../../common/errors.js';
import { callUnary, storeClient } from '../../wire/rpc-client.js';

const TOOLS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** One waiting Get's deadline (the follower caps its wait below it). */
const WAIT_CALL_MS = 30_000;
/** How often waitForLog looks at the lines already read (in memory; a line's time is when it arrived). */
const LOG_POLL_MS = 10;

type LogLine = Record<string, unknown> & { msg?: string };

export interface NodeSettings {
  /** Extra node flags for the server processes (e.g. --cpu-prof). */
  nodeArgs: string[];
  sync: boolean;
  /** A command that runs node for the servers (e.g. chrt -f 1): it must exec it, keeping the pid. */
  launcher?: string[];
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

  constructor(tool: string, args: string[], nodeArgs: string[], env: NodeJS.ProcessEnv = {}, launcher: string[] = []) {
    const command = [...launcher, process.execPath, ...nodeArgs, path.join(TOOLS, `${tool}.js`), ...args];
    this.child = spawn(command[0], command.slice(1), {
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
      await sleep(LOG_POLL_MS);
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
    s.launcher,
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
    s.launcher,
  );
  const { line } = await proc.waitForLog('follower serving reads');
  return { proc, readAddress: line.readAddress as string, startedAt };
}

/**
 * Resolves to the time (performance.now(), ms) each follower applied at least seq. Each
 * follower is asked once, with a Get carrying min_seq = seq, which it answers as soon as it
 * has applied seq (read-your-writes): no polling, whose calls (a grpc-js unary call costs
 * about 1 ms of CPU on the two sides) would compete with the load being measured. A Get
 * that reaches its wait budget first (SEQ_NOT_APPLIED) is asked again.
 */
export async function waitApplied(followers: readonly Follower[], seq: number, timeoutMs = 1_800_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const clients = followers.map((f) => storeClient(f.readAddress));
  try {
    return await Promise.all(
      followers.map(async (f, i) => {
        for (;;) {
          try {
            const res = await callUnary<GetResponse__Output>(
              (o, cb) => clients[i].Get({ key: Buffer.from('-'), minSeq: String(seq) }, o, cb),
              Math.max(1_000, Math.min(WAIT_CALL_MS, deadline - Date.now())),
              { role: 'follower', address: f.readAddress },
            );
            const at = performance.now();
            if (Number(res.appliedSeq) < seq) throw new Error(`follower answered at seq ${res.appliedSeq}, below min_seq ${seq}`);
            return at;
          } catch (err) {
            if (!(isReplicatorError(err) && err.code === ErrorCode.SEQ_NOT_APPLIED)) throw err;
            if (Date.now() > deadline) throw new Error(`a follower did not apply seq ${seq} within ${timeoutMs} ms`);
          }
        }
      }),
    );
  } finally {
    for (const c of clients) c.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
