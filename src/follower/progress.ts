import cliProgress from 'cli-progress';
import type { Logger } from '../common/logger.js';
import { statusLineFor, type StatusLine, type TerminalStream } from '../common/status-line.js';

/** Progress lines go to the log this often (by default) when stderr is not a terminal. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 5_000;
/** Catch-up progress is shown only when the follower is at least this far behind. */
export const CATCH_UP_MIN_ENTRIES = 10_000n;
/**
 * A snapshot gets a bar once the master says it holds this many keys, or once it has
 * run this long: a small snapshot is over before a bar could say anything useful.
 */
export const SNAPSHOT_BAR_MIN_KEYS = 10_000n;
export const SNAPSHOT_BAR_AFTER_MS = 1_000;
/** The bar is redrawn at most this often (each redraw is a write to the terminal). */
const REDRAW_MS = 100;
/** The bar's width, narrowed (down to the minimum) when the whole line would not fit the terminal. */
const BAR_WIDTH = 40;
const MIN_BAR_WIDTH = 10;

type SnapshotPhase = { kind: 'snapshot'; startedMs: number; keys: bigint; bytes: number; total: bigint | undefined };
type CatchUpPhase = { kind: 'catch-up'; startedMs: number; fromSeq: bigint; target: bigint; appliedSeq: bigint; masterLastSeq: bigint };
type Phase = SnapshotPhase | CatchUpPhase;

/**
 * Shows snapshot and catch-up progress: a bar on a terminal (percentage, keys/bytes,
 * rate, ETA), and a periodic `progress` log line (with a percentage) otherwise.
 *
 * A snapshot's total is the master's exact key count (a SnapshotSize message, usually
 * early in the transfer; never an estimate): until it arrives the percentage is unknown.
 * A catch-up's total is fixed when it starts, at the master's last seq then, so the
 * phase always ends: when the follower has applied that far (and is within
 * CATCH_UP_MIN_ENTRIES of the master; if not, the target moves to the master's last seq).
 * A completed phase draws its bar at 100%, then clears it; an interrupted one clears it.
 */
export class Progress {
  private phase: Phase | undefined;
  private barShown = false;
  private lastDrawMs = 0;
  private lastLogMs = 0;
  /** The percentage of the last progress line logged in this phase. */
  private loggedPercent: number | undefined;
  private readonly line: StatusLine;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = DEFAULT_PROGRESS_INTERVAL_MS,
    /** Where the bar goes; it is drawn only when this is a terminal. */
    stream: TerminalStream = process.stderr,
    private readonly now: () => number = Date.now,
  ) {
    this.line = statusLineFor(stream);
  }

  snapshotStarted(): void {
    this.finish();
    this.phase = { kind: 'snapshot', startedMs: this.now(), keys: 0n, bytes: 0, total: undefined };
  }

  /** The master's count of the snapshot's keys. */
  snapshotTotal(keys: bigint): void {
    if (this.phase?.kind !== 'snapshot') return;
    this.phase.total = keys;
    this.report(false);
  }

  /** Keys and bytes received (and staged) so far. */
  snapshotProgress(keys: bigint, bytes: number): void {
    if (this.phase?.kind !== 'snapshot') return;
    this.phase.keys = keys;
    this.phase.bytes = bytes;
    this.report(true);
  }

  /** The snapshot is installed: the bar shows 100% and is cleared; a log shows 100% too. */
  snapshotInstalled(keys: bigint, bytes: number): void {
    if (this.phase?.kind !== 'snapshot') return;
    Object.assign(this.phase, { keys, bytes, total: keys });
    this.complete();
  }

  /** Called after each applied batch with how far the master is. */
  applied(appliedSeq: bigint, masterLastSeq: bigint): void {
    const behind = masterLastSeq - appliedSeq;
    if (this.phase?.kind === 'snapshot') return;
    if (!this.phase) {
      if (behind < CATCH_UP_MIN_ENTRIES) return;
      this.phase = { kind: 'catch-up', startedMs: this.now(), fromSeq: appliedSeq, target: masterLastSeq, appliedSeq, masterLastSeq };
    }
    const phase = this.phase;
    phase.appliedSeq = appliedSeq;
    phase.masterLastSeq = masterLastSeq;
    if (appliedSeq >= phase.target) {
      if (behind < CATCH_UP_MIN_ENTRIES) {
        const entries = Number(appliedSeq - phase.fromSeq);
        this.complete();
        this.log.info({ entries, seconds: (this.now() - phase.startedMs) / 1000 }, 'caught up');
        return;
      }
      phase.target = masterLastSeq; // still far behind: one more lap, to where the master is now
    }
    this.report(true);
  }

  /** Ends the current phase, if any, without completing it: its bar is cleared. */
  finish(): void {
    this.clearBar();
    this.phase = undefined;
    this.loggedPercent = undefined;
  }

  private complete(): void {
    if (this.barShown) this.draw();
    else if (!this.line.isTerminal && this.phase?.kind === 'snapshot' && this.loggedPercent !== 100) this.logLine();
    this.finish();
  }

  /** Draws the bar (at most every REDRAW_MS), or logs a line (at most every interval). */
  private report(fromTransfer: boolean): void {
    const now = this.now();
    if (this.line.isTerminal) {
      if (!this.barShown && !this.wantsBar(now)) return;
      if (this.barShown && now - this.lastDrawMs < REDRAW_MS) return;
      this.draw();
      return;
    }
    if (!fromTransfer || now - this.lastLogMs < this.intervalMs) return;
    this.lastLogMs = now;
    this.logLine();
  }

  private wantsBar(now: number): boolean {
    const phase = this.phase!;
    if (phase.kind === 'catch-up') return true;
    return (phase.total !== undefined && phase.total >= SNAPSHOT_BAR_MIN_KEYS) || now - phase.startedMs >= SNAPSHOT_BAR_AFTER_MS;
  }

  private draw(): void {
    this.lastDrawMs = this.now();
    this.barShown = true;
    this.line.show(this.barText());
  }

  private clearBar(): void {
    if (!this.barShown) return;
    this.barShown = false;
    this.line.clear();
  }

  /** Done and total of the phase (total undefined while unknown), in its unit. */
  private amounts(): { done: number; total: number | undefined } {
    const phase = this.phase!;
    if (phase.kind === 'snapshot') return { done: Number(phase.keys), total: phase.total === undefined ? undefined : Number(phase.total) };
    const total = Number(phase.target - phase.fromSeq);
    return { done: Math.min(Number(phase.appliedSeq - phase.fromSeq), total), total };
  }

  private rate(done: number): number {
    const s = (this.now() - this.phase!.startedMs) / 1000;
    return s > 0 ? Math.round(done / s) : 0;
  }

  private barText(): string {
    const phase = this.phase!;
    const { done, total } = this.amounts();
    const rate = this.rate(done);
    const fraction = total === undefined ? 0 : total === 0 ? 1 : Math.min(1, done / total);
    const pct = total === undefined ? '?' : String(percentOf(done, total));
    const eta = total === undefined || rate === 0 ? '?' : cliProgress.Format.TimeFormat(Math.round((total - done) / rate), { autopaddingChar: '' } as cliProgress.Options, 5);
    const head = phase.kind === 'snapshot' ? 'snapshot  ' : 'catch-up  ';
    const tails =
      phase.kind === 'snapshot'
        ? [
            ` ${pct}%${total === undefined ? '' : ` of ${total}`} | ${phase.keys} keys, ${(phase.bytes / 1e6).toFixed(1)} MB | ${rate} keys/s | ETA ${eta}`,
            ` ${pct}%${total === undefined ? '' : ` of ${total}`} | ${phase.keys} keys | ${rate} keys/s | ETA ${eta}`, // narrow terminals: no MB
          ]
        : [` ${pct}% | ${done}/${total} entries | ${rate} entries/s | ETA ${eta}`];
    const room = this.line.width - head.length - 2;
    const tail = tails.find((t) => t.length + MIN_BAR_WIDTH <= room) ?? tails[tails.length - 1];
    const size = Math.max(MIN_BAR_WIDTH, Math.min(BAR_WIDTH, room - tail.length));
    const bar = cliProgress.Format.BarFormat(fraction, { barsize: size, barCompleteString: '\u2588'.repeat(size), barIncompleteString: '\u2591'.repeat(size), barGlue: '' } as cliProgress.Options);
    return `${head}|${bar}|${tail}`;
  }

  private logLine(): void {
    const phase = this.phase!;
    const { done, total } = this.amounts();
    const rate = this.rate(done);
    const percent = total === undefined ? undefined : percentOf(done, total);
    this.loggedPercent = percent;
    const fields =
      phase.kind === 'snapshot'
        ? { keys: phase.keys.toString(), bytes: phase.bytes, totalKeys: phase.total?.toString(), percent, keysPerSecond: rate }
        : {
            appliedSeq: phase.appliedSeq.toString(),
            masterLastSeq: phase.masterLastSeq.toString(),
            behind: (phase.masterLastSeq - phase.appliedSeq).toString(),
            percent,
            entriesPerSecond: rate,
          };
    this.log.info({ phase: phase.kind, ...fields }, 'progress');
  }
}

/** Whole percent, rounded down: 100 only when everything is there. */
function percentOf(done: number, total: number): number {
  return total <= 0 ? 100 : Math.min(100, Math.floor((done * 100) / total));
}
