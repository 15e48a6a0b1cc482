import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TOOLS = path.join(ROOT, 'dist/tools');

export function tempDir(prefix = 'lr-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Polls cond until it returns a truthy value or the deadline passes. Never a fixed sleep. */
export async function waitFor<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 30_000, intervalMs = 25): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<Awaited<T>>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs one of our CLIs to completion. */
export function runTool(tool: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(TOOLS, `${tool}.js`), ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${tool} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60_000} ms; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A tool that exits before reading all its input must not crash the test with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

type LogLine = Record<string, unknown> & { msg?: string };

/** A long-running server process (master-server or follower-client) under test control. */
export class ServerProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited = false;
  /** Frozen by SIGSTOP (pause()) and not yet resumed. */
  paused = false;
  private readonly child: ChildProcess;

  constructor(tool: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [path.join(TOOLS, `${tool}.js`), ...args], {
      cwd: opts.cwd,
      env: { ...process.env, LR_LOG_LEVEL: 'debug', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ msg: line });
        }
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

  /** Waits for a log line with this msg; fails fast if the process exits first. */
  async waitForLog(msg: string | RegExp, timeoutMs = 20_000, from = 0): Promise<LogLine> {
    const matches = (l: LogLine) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg ?? ''));
    return waitFor(
      () => {
        const hit = this.logs.slice(from).find(matches);
        if (hit) return hit;
        if (this.exited) throw new Error(`process exited before logging "${msg}"; stderr: ${this.stderr}; logs: ${JSON.stringify(this.logs.slice(-5))}`);
        return undefined;
      },
      `log "${msg}"`,
      timeoutMs,
    );
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

  async kill(sig: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.signal(sig);
    // A stopped process only acts on a catchable signal once it runs again.
    if (this.paused && sig !== 'SIGKILL') this.resume();
    return this.exit;
  }
}

export interface MasterHandle {
  proc: ServerProcess;
  address: string;
  /** Where it serves Prometheus metrics (undefined with --metrics-listen off). */
  metricsAddress?: string;
}

export async function startMaster(dataDir: string, listen = '127.0.0.1:0', extra: string[] = []): Promise<MasterHandle> {
  const proc = new ServerProcess('master-server', ['--data-dir', dataDir, '--listen', listen, '--heartbeat-interval-ms', '200', ...extra]);
  const line = await proc.waitForLog('master listening');
  return { proc, address: line.address as string, metricsAddress: line.metricsAddress as string | undefined };
}

export interface FollowerHandle {
  proc: ServerProcess;
  readAddress: string;
  metricsAddress?: string;
}

export async function startFollower(id: number, dataDir: string, master: string, extra: string[] = []): Promise<FollowerHandle> {
  const proc = new ServerProcess('follower-client', [
    String(id),
    '--data-dir',
    dataDir,
    '--master',
    master,
    '--listen',
    '127.0.0.1:0',
    '--heartbeat-timeout-ms',
    '2000',
    ...extra,
  ]);
  const line = await proc.waitForLog('follower serving reads');
  return { proc, readAddress: line.readAddress as string, metricsAddress: line.metricsAddress as string | undefined };
}
