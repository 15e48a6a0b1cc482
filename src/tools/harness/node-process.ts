import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './polling.js';

/**
 * The built CLIs. This file runs from dist/tools/harness (the bench) or from
 * src/tools/harness under tsx (the tests); both are three levels below the package root,
 * and both must start the built tools, never the sources.
 */
const TOOLS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/tools');
/** How often waitForLog looks at the lines already read (in memory; a line's time is when it arrived). */
const LOG_POLL_MS = 10;

/** The script of one of our CLIs (master-server, push-data, ...). */
export function toolScript(tool: string): string {
  return path.join(TOOLS, `${tool}.js`);
}

/** A JSON log line of a server (pino); a line that is not JSON is kept as its msg. */
export type LogLine = Record<string, unknown> & { msg?: string };

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  cwd?: string;
  /** Laid over this process's environment; a variable set to undefined is left out. */
  env?: NodeJS.ProcessEnv;
  /** LR_LOG_LEVEL unless env sets it. Default debug: tests wait for debug lines; the bench asks for info. */
  logLevel?: string;
  /** Extra node flags (e.g. --cpu-prof, --max-semi-space-size=8). */
  nodeArgs?: string[];
  /** A command that runs node (e.g. chrt -f 1): it must exec it, keeping the pid. */
  launcher?: string[];
}

/**
 * One long-running CLI process (master-server or follower-client) under the control of a
 * test or the bench. Its JSON log lines (stdout) are kept with the time each arrived
 * (performance.now(), ms); it can be frozen (SIGSTOP), resumed, stopped or killed.
 */
export class NodeProcess {
  readonly logs: LogLine[] = [];
  /** When each line of logs arrived (performance.now(), ms), at the same index. */
  readonly logTimes: number[] = [];
  stderr = '';
  readonly exit: Promise<ExitStatus>;
  exited = false;
  /** Frozen by SIGSTOP (pause()) and not yet resumed. */
  paused = false;
  private readonly child: ChildProcess;

  constructor(
    readonly tool: string,
    args: string[],
    opts: SpawnOptions = {},
  ) {
    const command = [...(opts.launcher ?? []), process.execPath, ...(opts.nodeArgs ?? []), toolScript(tool), ...args];
    this.child = spawn(command[0], command.slice(1), {
      cwd: opts.cwd,
      env: { ...process.env, LR_LOG_LEVEL: opts.logLevel ?? 'debug', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: text };
        }
        this.logs.push(line);
        this.logTimes.push(performance.now());
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exit = new Promise((resolve) => {
      // 'close', not 'exit': stdout and stderr are fully read by then, so no late line is missed.
      this.child.on('close', (code, signal) => {
        this.exited = true;
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits for a log line with this msg (from index `from` on); fails as soon as the process has exited without it. */
  async waitForLog(msg: string | RegExp, timeoutMs = 20_000, from = 0): Promise<LogLine> {
    return this.logs[await this.waitForLogIndex(msg, timeoutMs, from)];
  }

  /** waitForLog, with the time the line arrived (performance.now(), ms): for timings. */
  async waitForLogAt(msg: string | RegExp, timeoutMs = 20_000, from = 0): Promise<{ at: number; line: LogLine }> {
    const i = await this.waitForLogIndex(msg, timeoutMs, from);
    return { at: this.logTimes[i], line: this.logs[i] };
  }

  private async waitForLogIndex(msg: string | RegExp, timeoutMs: number, from: number): Promise<number> {
    const matches = (l: LogLine) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg ?? ''));
    const deadline = Date.now() + timeoutMs;
    for (let i = from; ; ) {
      // Read before looking: once the process has exited, every line it wrote is in logs.
      const exited = this.exited;
      for (; i < this.logs.length; i++) if (matches(this.logs[i])) return i;
      if (exited) throw new Error(`${this.tool} exited before logging "${msg}"; stderr: ${this.stderr.trim()}; logs: ${JSON.stringify(this.logs.slice(-5))}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for log "${msg}" from ${this.tool}`);
      await sleep(LOG_POLL_MS);
    }
  }

  hasLog(msg: string): boolean {
    return this.logs.some((l) => l.msg === msg);
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(sig);
  }

  /** SIGSTOP: the process freezes wherever it is; its sockets stay open and unread. */
  pause(): void {
    this.signal('SIGSTOP');
    this.paused = !this.exited;
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.signal('SIGCONT');
    this.paused = false;
  }

  async kill(sig: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> {
    this.signal(sig);
    // A stopped process only acts on a catchable signal once it runs again.
    if (this.paused && sig !== 'SIGKILL') this.resume();
    return this.exit;
  }

  /** A clean stop (SIGTERM): the store is closed, and a CPU profile or latency trace, if asked for, is written. */
  stop(): Promise<ExitStatus> {
    return this.kill('SIGTERM');
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
}
