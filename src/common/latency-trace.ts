import fs from 'node:fs';

/** How often buffered trace points are written out. */
const FLUSH_INTERVAL_MS = 200;

/**
 * A measurement hook for the benchmark (npm run bench), off unless the environment
 * variable LR_LATENCY_TRACE names a file. Then the master appends one line
 * "<seq> <µs>" per durable group commit (seq = the group's last seq) and a follower one
 * per durable applied batch (seq = its new applied seq). Times are the system-wide
 * monotonic clock in microseconds, so the two processes' lines compare: the benchmark
 * joins them by seq to get commit-to-applied lag per entry, with sub-ms precision (the
 * commit time inside log entries is whole ms).
 *
 * Recording costs two numbers in memory; lines are written every FLUSH_INTERVAL_MS and
 * at exit, never on the write path.
 */
export class LatencyTrace {
  private pending: string[] = [];
  private readonly fd: number;

  private constructor(file: string) {
    this.fd = fs.openSync(file, 'a');
    setInterval(() => this.flush(), FLUSH_INTERVAL_MS).unref();
    process.on('exit', () => this.flush());
  }

  /** The trace named by LR_LATENCY_TRACE, or undefined (the normal case). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): LatencyTrace | undefined {
    const file = env.LR_LATENCY_TRACE;
    return file ? new LatencyTrace(file) : undefined;
  }

  /** Notes that seq became durable (master) or applied (follower) now. */
  record(seq: bigint): void {
    this.pending.push(`${seq} ${process.hrtime.bigint() / 1000n}\n`);
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    fs.writeSync(this.fd, text);
  }
}

/** The process's trace, if LR_LATENCY_TRACE is set. */
export const latencyTrace = LatencyTrace.fromEnv();
