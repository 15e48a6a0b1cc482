import { quantileSorted } from './stats.js';

/**
 * Replication lag from the nodes' latency traces (LR_LATENCY_TRACE, see
 * src/common/latency-trace.ts): the master records (last seq of each durable group
 * commit, monotonic µs), a follower (applied seq after each durable batch, monotonic µs).
 * Both use the system-wide monotonic clock, so times from the two processes compare.
 */
export interface TracePoint {
  seq: number;
  us: number;
}

/** Parses "seq micros" lines; ignores blank and malformed lines (a torn last line). */
export function parseTrace(text: string): TracePoint[] {
  const out: TracePoint[] = [];
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const seq = Number(line.slice(0, sp));
    const us = Number(line.slice(sp + 1));
    if (Number.isSafeInteger(seq) && Number.isFinite(us)) out.push({ seq, us });
  }
  return out;
}

/**
 * Per-entry lag in ms for every seq in [fromSeq, toSeq]: the time of the first follower
 * point at or past the seq minus the time of the first master point at or past it.
 * Both traces must be in increasing seq order (they are written that way). Seqs the
 * follower never reached are left out.
 */
export function entryLagsMs(master: readonly TracePoint[], follower: readonly TracePoint[], fromSeq: number, toSeq: number): Float64Array {
  const out = new Float64Array(Math.max(0, toSeq - fromSeq + 1));
  let n = 0;
  let mi = 0;
  let fi = 0;
  for (let s = fromSeq; s <= toSeq; s++) {
    while (mi < master.length && master[mi].seq < s) mi++;
    while (fi < follower.length && follower[fi].seq < s) fi++;
    if (mi === master.length || fi === follower.length) break;
    out[n++] = (follower[fi].us - master[mi].us) / 1000;
  }
  return out.subarray(0, n);
}

export interface LagSummary {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  entries: number;
}

export function summarizeLags(lagsMs: Float64Array): LagSummary {
  const sorted = Float64Array.from(lagsMs).sort();
  return {
    p50: quantileSorted(sorted, 0.5),
    p99: quantileSorted(sorted, 0.99),
    p999: quantileSorted(sorted, 0.999),
    max: sorted.length > 0 ? sorted[sorted.length - 1] : NaN,
    entries: sorted.length,
  };
}
