import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * Epoch histories (docs/roles.md, "Epochs: the fencing token"): which master committed
 * which seqs. Pure functions only; the log keeps its history durably (SegmentLog, MemoryLog)
 * and src/wire converts it to and from the protocol.
 */

/** The epoch `epoch` begins with the entry at `firstSeq`. */
export interface EpochStart {
  epoch: number;
  firstSeq: bigint;
}

/**
 * Oldest first. Invariant (validateHistory): not empty, the first entry starts at seq 1,
 * epochs strictly increase, firstSeqs never decrease (an epoch that started and committed
 * nothing before the next began shares its firstSeq with that next one).
 */
export type EpochHistory = readonly EpochStart[];

/** Every log's history until a promotion: epoch 1 from seq 1. */
export const INITIAL_HISTORY: EpochHistory = Object.freeze([Object.freeze({ epoch: 1, firstSeq: 1n })]);

/** Epochs are u32 on disk (segment headers) and on the wire. */
const MAX_EPOCH = 0xffff_ffff;

/** The epoch whose master committed the entry at seq: the last one with firstSeq <= seq (the first epoch for seq 0). */
export function epochOf(h: EpochHistory, seq: bigint): number {
  let epoch = h[0].epoch;
  for (const e of h) {
    if (e.firstSeq > seq) break;
    epoch = e.epoch;
  }
  return epoch;
}

/** The newest epoch of a history. */
export function lastEpoch(h: EpochHistory): number {
  return h[h.length - 1].epoch;
}

/**
 * The last seq on which both histories name the same epoch: over the union of both lists'
 * firstSeq boundaries, in order, the first boundary b where they disagree gives b - 1.
 * undefined when they agree at every boundary (they never disagree: "infinity").
 */
export function forkSeq(a: EpochHistory, b: EpochHistory): bigint | undefined {
  const boundaries = [...new Set([...a, ...b].map((e) => e.firstSeq))].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  for (const seq of boundaries) {
    if (epochOf(a, seq) !== epochOf(b, seq)) return seq - 1n;
  }
  return undefined;
}

/**
 * The history after `epoch` begins at `firstSeq` (a promotion at seq firstSeq - 1).
 * Epochs the history names from after firstSeq are dropped: they were adopted from an
 * upstream this node never received those seqs from, and its own seqs from firstSeq on are
 * the new epoch's. INVALID_ARGUMENT unless epoch is above every epoch of h.
 */
export function startEpoch(h: EpochHistory, epoch: number, firstSeq: bigint): EpochHistory {
  if (epoch <= lastEpoch(h)) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `cannot begin epoch ${epoch}: the log is already at epoch ${lastEpoch(h)}`);
  const next = [...h.filter((e) => e.firstSeq <= firstSeq), { epoch, firstSeq }];
  validateHistory(next);
  return frozenHistory(next);
}

/** Whether two histories are the same list. */
export function sameHistory(a: EpochHistory, b: EpochHistory): boolean {
  return a.length === b.length && a.every((e, i) => e.epoch === b[i].epoch && e.firstSeq === b[i].firstSeq);
}

/**
 * Throws unless h keeps the EpochHistory invariant. `code`: INVALID_ARGUMENT for a history
 * someone handed over (an upstream's), CORRUPT_ENTRY for one read from disk; `what` names
 * it in the message.
 */
export function validateHistory(h: EpochHistory, code: ErrorCode = ErrorCode.INVALID_ARGUMENT, what = 'epoch history'): void {
  const bad = (why: string) => new ReplicatorError(code, `invalid ${what} ${describe(h)}: ${why}`);
  if (h.length === 0) throw bad('it is empty (every history starts with an epoch at seq 1)');
  if (h[0].firstSeq !== 1n) throw bad(`its first epoch starts at seq ${h[0].firstSeq}, not at seq 1`);
  for (let i = 0; i < h.length; i++) {
    const { epoch, firstSeq } = h[i];
    if (!Number.isInteger(epoch) || epoch < 1 || epoch > MAX_EPOCH) throw bad(`epoch ${epoch} is not an integer from 1 to ${MAX_EPOCH}`);
    if (typeof firstSeq !== 'bigint' || firstSeq < 1n) throw bad(`epoch ${epoch} starts at seq ${String(firstSeq)}`);
    if (i === 0) continue;
    const prev = h[i - 1];
    if (epoch <= prev.epoch) throw bad(`epoch ${epoch} follows epoch ${prev.epoch} (epochs must increase)`);
    if (firstSeq < prev.firstSeq) throw bad(`epoch ${epoch} starts at seq ${firstSeq}, before epoch ${prev.epoch} (seq ${prev.firstSeq})`);
  }
}

/** A copy that nobody can change (the log hands its history out as this). */
export function frozenHistory(h: EpochHistory): EpochHistory {
  return Object.freeze(h.map((e) => Object.freeze({ epoch: e.epoch, firstSeq: e.firstSeq })));
}

const FILE_COMMENT = '# level-replicator epoch history, oldest first: <epoch> <first seq>';

/** The text of a log's `epochs` file: a comment line, then one `<epoch> <firstSeq>` line per epoch. */
export function formatHistory(h: EpochHistory): string {
  return `${FILE_COMMENT}\n${h.map((e) => `${e.epoch} ${e.firstSeq}`).join('\n')}\n`;
}

/**
 * Parses formatHistory's text (blank lines and lines starting with # are skipped) and
 * validates it. CORRUPT_ENTRY for anything else: the file is written atomically, so a
 * file that does not parse is damage, never a write cut short.
 */
export function parseHistory(text: string, what = 'epochs file'): EpochHistory {
  const h: EpochStart[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '') throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `the ${what} does not end with a newline: it is damaged`);
  lines.forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const m = /^(\d{1,10}) (\d{1,20})$/.exec(line);
    if (!m) throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `line ${i + 1} of the ${what} is not "<epoch> <first seq>": ${JSON.stringify(line.slice(0, 80))}`);
    h.push({ epoch: Number(m[1]), firstSeq: BigInt(m[2]) });
  });
  validateHistory(h, ErrorCode.CORRUPT_ENTRY, what);
  return frozenHistory(h);
}

/** `1@1 2@5301`: epoch@firstSeq, for messages. */
function describe(h: EpochHistory): string {
  return h.length === 0 ? '(empty)' : h.map((e) => `${e.epoch}@${String(e.firstSeq)}`).join(' ');
}
