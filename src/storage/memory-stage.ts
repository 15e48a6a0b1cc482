import type { ChainPosition, StagedEntries, StagedPairs } from './interfaces.js';
import { stageVerified } from './entry-chain.js';
import type { BatchOp } from './memory-disk.js';

/**
 * Verifies entries of history historyId as following `from` (entry-chain.ts, the same
 * verification as the LevelDB replica's) and returns the write that applies them: their
 * data changes in generation gen and the new position (seq, checksum, commit time,
 * history). A refusal returns nothing, so nothing of the entries can be written.
 */
export function stageEntryOps(gen: number, entries: readonly Buffer[], historyId: Buffer, from: ChainPosition): { ops: BatchOp[]; to: ChainPosition } {
  const ops: BatchOp[] = [];
  // Values are copied: the disk keeps them, and entries are views of received messages.
  const to = stageVerified(
    { put: (key, value) => ops.push({ type: 'put', key, value: Buffer.from(value) }), del: (key) => ops.push({ type: 'del', key }) },
    gen,
    entries,
    historyId,
    from,
  );
  return { ops, to: { ...to, historyId: Buffer.from(to.historyId) } };
}

/** StagedEntries of a memory replica store: the write that applies them, not made yet. */
export class MemoryStagedEntries implements StagedEntries {
  used = false;
  constructor(
    readonly owner: object,
    readonly from: ChainPosition,
    readonly to: ChainPosition,
    readonly count: number,
    readonly gen: number,
    readonly ops: readonly BatchOp[],
  ) {}
}

/** StagedPairs of a memory replica store: the puts of snapshot pairs, not written yet. */
export class MemoryStagedPairs implements StagedPairs {
  used = false;
  constructor(
    readonly owner: object,
    readonly gen: number,
    readonly count: number,
    readonly ops: readonly BatchOp[],
  ) {}
}
