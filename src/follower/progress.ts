import cliProgress from 'cli-progress';
import type { Logger } from '../common/logger.js';

/** Progress lines go to the log this often (by default) when stderr is not a terminal. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 5_000;
/** Catch-up progress is shown only when the follower is at least this far behind. */
const CATCH_UP_MIN_ENTRIES = 10_000n;

type Phase = { kind: 'snapshot'; total: number; startedMs: number } | { kind: 'catch-up'; total: number; startedMs: number; fromSeq: bigint };

/**
 * Shows snapshot and catch-up progress: a bar on a terminal (keys/bytes, rate, ETA), and
 * a periodic `progress` log line otherwise.
 */
export class Progress {
  private phase: Phase | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private lastLogMs = 0;

  private readonly tty: boolean;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = DEFAULT_PROGRESS_INTERVAL_MS,
    /** Where the bar goes; it is drawn only when this is a terminal. */
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  snapshotStarted(approxBytes: number): void {
    this.finish();
    this.phase = { kind: 'snapshot', total: Math.max(approxBytes, 1), startedMs: Date.now() };
    this.open('snapshot  |{bar}| {percentage}% | {keys} keys, {mb} MB | {rate} keys/s | ETA {eta_formatted}', this.phase.total);
  }

  snapshotProgress(keys: bigint, bytes: number): void {
    if (this.phase?.kind !== 'snapshot') return;
    const rate = this.rate(Number(keys));
    // The total is LevelDB's compressed estimate; never let the bar claim more than 99%.
    const value = Math.min(bytes, this.phase.total * 0.99);
    this.update(value, { keys: keys.toString(), mb: (bytes / 1e6).toFixed(1), rate }, () => ({
      keys: keys.toString(),
      bytes,
      approxTotalBytes: this.phase!.total,
      keysPerSecond: rate,
    }));
  }

  /** Called after each applied batch with how far the master is. */
  applied(appliedSeq: bigint, masterLastSeq: bigint): void {
    const behind = masterLastSeq - appliedSeq;
    if (this.phase?.kind === 'snapshot') return;
    if (!this.phase) {
      if (behind < CATCH_UP_MIN_ENTRIES) return;
      this.phase = { kind: 'catch-up', total: Number(behind), startedMs: Date.now(), fromSeq: appliedSeq };
      this.open('catch-up  |{bar}| {percentage}% | {done}/{total} entries | {rate} entries/s | ETA {eta_formatted}', this.phase.total);
    }
    const phase = this.phase as Extract<Phase, { kind: 'catch-up' }>;
    const done = Number(appliedSeq - phase.fromSeq);
    if (behind <= 0n) {
      this.log.info({ entries: done, seconds: (Date.now() - phase.startedMs) / 1000 }, 'caught up');
      this.finish();
      return;
    }
    phase.total = Math.max(phase.total, done + Number(behind));
    this.bar?.setTotal(phase.total);
    const rate = this.rate(done);
    this.update(done, { done, rate }, () => ({ appliedSeq: appliedSeq.toString(), masterLastSeq: masterLastSeq.toString(), behind: behind.toString(), entriesPerSecond: rate }));
  }

  finish(): void {
    this.bar?.stop();
    this.bar = undefined;
    this.phase = undefined;
  }

  private open(format: string, total: number): void {
    if (!this.tty) return;
    this.bar = new cliProgress.SingleBar({ format, stream: this.stream as NodeJS.WriteStream, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
    this.bar.start(total, 0, { keys: '0', mb: '0.0', rate: 0, done: 0 });
  }

  private rate(done: number): number {
    const s = (Date.now() - this.phase!.startedMs) / 1000;
    return s > 0 ? Math.round(done / s) : 0;
  }

  private update(value: number, payload: Record<string, unknown>, logFields: () => Record<string, unknown>): void {
    if (this.bar) {
      this.bar.update(value, payload);
      return;
    }
    const now = Date.now();
    if (now - this.lastLogMs < this.intervalMs) return;
    this.lastLogMs = now;
    this.log.info({ phase: this.phase!.kind, ...logFields() }, 'progress');
  }
}
