import type { AckedWrite } from './load.js';

const SAMPLES = 5;
/**
 * How much later than a newer epoch's election (or first acknowledgement) an answer of an
 * older epoch may be recorded by the load's client and still have left its node in time.
 * A lease holder stops acknowledging max(1 s, TTL/3) before etcd can expire its lease, and
 * only then can a successor be elected, so a correct answer leaves at least a second before
 * the election; half a second covers its delivery and the client's event loop running late
 * on a loaded machine, and still catches an answer sent after a frozen leader resumed.
 */
export const ANSWER_SLACK_MS = 500;

/** A node frozen (SIGSTOP) from `from` until `to` (Date.now() ms); to undefined: never resumed. */
export interface Freeze {
  address: string;
  from: number;
  to?: number;
}

/** One election as the elected node logged it: which node, the epoch, and when (Date.now() ms). */
export interface Election {
  id: number;
  epoch: number;
  at: number;
}

interface Report {
  note(text: string): void;
  problem(text: string): void;
}

/**
 * The acknowledgements of a run with automatic failover, against the elections and the
 * final master's epoch history:
 * - each epoch was elected once, and epochs grow in the order of their elections;
 * - at most one node acknowledged writes at any epoch;
 * - no write was acknowledged at an epoch after a newer epoch's leader was elected, nor
 *   recorded after a write of a newer epoch was (by more than ANSWER_SLACK_MS): two masters
 *   never acknowledged at the same time. Except the one window the README names: an answer
 *   whose lease check passed before its node was frozen leaves when it resumes (grpc-js
 *   writes it to the socket a loop turn after the check). An answer recorded within
 *   ANSWER_SLACK_MS of its node's SIGCONT, frozen since before the election, is counted
 *   and noted, not a problem; it must still be in the final history like every other;
 * - every acknowledged (epoch, seq) lies in that epoch's range of the final history (the
 *   write is in the history at the place its answer named, not only somewhere).
 * Writes need `address` and `at` (the load records both).
 */
export function checkAckEpochs(
  acked: readonly AckedWrite[],
  elections: readonly Election[],
  freezes: readonly Freeze[],
  history: readonly { epoch: number; firstSeq: string }[],
  report: Report,
): void {
  const seen = new Map<number, Election>();
  let previous: Election | undefined;
  for (const e of elections) {
    const twice = seen.get(e.epoch);
    if (twice) report.problem(`epoch ${e.epoch} was elected twice: node ${twice.id}, then node ${e.id}`);
    seen.set(e.epoch, e);
    if (previous && e.epoch <= previous.epoch) report.problem(`node ${e.id} was elected at epoch ${e.epoch} after node ${previous.id} at epoch ${previous.epoch}`);
    previous = e;
  }

  // Per epoch: who acknowledged, and the first and last answer recorded.
  const byEpoch = new Map<number, { nodes: Set<string>; first: number; last: number; count: number }>();
  for (const w of acked) {
    const at = w.at ?? NaN;
    const e = byEpoch.get(w.epoch) ?? { nodes: new Set<string>(), first: at, last: at, count: 0 };
    e.nodes.add(w.address ?? '?');
    e.first = Math.min(e.first, at);
    e.last = Math.max(e.last, at);
    e.count++;
    byEpoch.set(w.epoch, e);
  }
  const epochs = [...byEpoch.keys()].sort((a, b) => a - b);
  for (const epoch of epochs) {
    const e = byEpoch.get(epoch)!;
    if (e.nodes.size > 1) report.problem(`${e.nodes.size} nodes acknowledged writes at epoch ${epoch}: ${[...e.nodes].join(', ')}`);
  }

  const late: string[] = [];
  const flushed: string[] = [];
  const excused = new Set<AckedWrite>();
  for (const w of acked) {
    const at = w.at ?? NaN;
    const newer = elections.find((e) => e.epoch > w.epoch);
    if (!newer || at <= newer.at + ANSWER_SLACK_MS) continue;
    const what = `${w.key} (epoch ${w.epoch}, by ${w.address}) recorded ${at - newer.at} ms after node ${newer.id} was elected at epoch ${newer.epoch}`;
    const thawed = freezes.find((f) => f.address === w.address && f.from <= newer.at && f.to !== undefined && at >= f.to && at <= f.to + ANSWER_SLACK_MS);
    if (thawed) {
      excused.add(w);
      flushed.push(`${what}, ${at - thawed.to!} ms after its SIGCONT`);
    } else late.push(what);
  }
  if (late.length > 0) report.problem(`${late.length} writes acknowledged after a newer epoch's leader was elected: ${late.slice(0, SAMPLES).join('; ')}`);
  if (flushed.length > 0) report.note(`${flushed.length} acknowledgements left a frozen leader right after its SIGCONT, checked before the freeze (the window the README names): ${flushed.slice(0, SAMPLES).join('; ')}`);
  // The ledger alone: answers of an older epoch all recorded before the first of a newer one.
  for (let i = 0; i + 1 < epochs.length; i++) {
    const olderLast = Math.max(...acked.filter((w) => w.epoch === epochs[i] && !excused.has(w)).map((w) => w.at ?? NaN));
    const firstNewer = Math.min(...epochs.slice(i + 1).map((x) => byEpoch.get(x)!.first));
    if (olderLast > firstNewer + ANSWER_SLACK_MS) {
      report.problem(`a write of epoch ${epochs[i]} was acknowledged ${olderLast - firstNewer} ms after one of a newer epoch: two masters acknowledged at once`);
    }
  }
  const gaps = epochs.slice(1).map((epoch, i) => {
    const e = elections.find((x) => x.epoch === epoch);
    const quiet = byEpoch.get(epoch)!.first - byEpoch.get(epochs[i])!.last;
    return `${epochs[i]}→${epoch}: ${quiet} ms without an acknowledgement${e ? `, last of ${epochs[i]} ${e.at - byEpoch.get(epochs[i])!.last} ms before the election` : ''}`;
  });
  report.note(`acknowledgements per epoch: ${epochs.map((x) => `${x}: ${byEpoch.get(x)!.count}`).join(', ')}; handovers ${gaps.join('; ') || 'none'}`);

  // Each acknowledged seq within its epoch's range of the final history.
  const ranges = new Map<number, { from: bigint; to: bigint | undefined }>();
  history.forEach((h, i) => ranges.set(h.epoch, { from: BigInt(h.firstSeq), to: i + 1 < history.length ? BigInt(history[i + 1].firstSeq) - 1n : undefined }));
  const outside: string[] = [];
  for (const w of acked) {
    const r = ranges.get(w.epoch);
    if (!r) outside.push(`${w.key} (seq ${w.seq}): epoch ${w.epoch} is not in the final history`);
    else if (w.seq < r.from || (r.to !== undefined && w.seq > r.to)) outside.push(`${w.key}: seq ${w.seq} is outside epoch ${w.epoch}'s seqs ${r.from}..${r.to ?? ''}`);
  }
  if (outside.length > 0) report.problem(`${outside.length} acknowledged writes are not where the final history puts their epoch: ${outside.slice(0, SAMPLES).join('; ')}`);
}
