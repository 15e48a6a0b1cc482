import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { sleep } from '../../src/tools/harness/polling.js';

const MAIN = path.join(import.meta.dirname, 'etcd-candidate-main.ts');
const ROOT = path.resolve(import.meta.dirname, '../..');

/** A line of etcd-candidate-main.ts, with when this process read it (performance.now(), ms). */
export interface CandidateEvent {
  event: 'campaigning' | 'elected' | 'renewed' | 'fenced' | 'lost' | 'published';
  at: number;
  receivedAt: number;
  epoch?: number;
  error?: string;
}

/** A LeaderLease (and optionally a MemberPublisher) in a child process, to be killed with SIGKILL. */
export class EtcdCandidate {
  readonly events: CandidateEvent[] = [];
  stderr = '';
  exited = false;
  private readonly child: ChildProcess;

  constructor(args: { endpoints: string; cluster: string; nodeId: number; address: string; ttlSeconds: number; member?: Record<string, unknown> }) {
    this.child = spawn(process.execPath, ['--import', 'tsx', MAIN, JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.events.push({ ...(JSON.parse(line) as Omit<CandidateEvent, 'receivedAt'>), receivedAt: performance.now() });
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.on('close', () => (this.exited = true));
  }

  /** The first event of this kind (from index `from` on); fails early if the process exits. */
  async waitForEvent(event: CandidateEvent['event'], timeoutMs = 30_000, from = 0): Promise<CandidateEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const exited = this.exited; // read first: once it has exited, every line it wrote is in events
      const e = this.events.slice(from).find((x) => x.event === event);
      if (e) return e;
      if (exited) throw new Error(`candidate exited before '${event}': ${this.stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for candidate event '${event}'; events: ${JSON.stringify(this.events.slice(-5))}`);
      await sleep(10);
    }
  }

  /** kill -9, and wait for the exit. */
  async kill(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('close', r));
    this.child.kill('SIGKILL');
    await gone;
  }
}
