import type { ChainPosition, StagedEntries, StagedPairs } from './interfaces.js';
import { stageVerified } from './entry-chain.js';
import { dataKey } from './layout.js';
import type { Store } from './level-store.js';

/** A LevelDB chained batch: filled synchronously, written (or closed) once. */
export type ChainedBatch = ReturnType<Store['batch']>;

/**
 * StagedEntries of a LevelDB replica store: the changes and the new position in one
 * chained batch that is not written yet. The batch is the store's business only.
 */
export class LevelStagedEntries implements StagedEntries {
  constructor(
    readonly batch: ChainedBatch,
    /** The data generation the changes are staged into. */
    readonly gen: number,
    readonly from: ChainPosition,
    /** The position once the batch is written. */
    readonly to: ChainPosition,
    readonly count: number,
    /** The entries themselves (appended to the replica's log before the batch is written). */
    readonly entries: readonly Buffer[],
  ) {}
}

/** StagedPairs of a LevelDB replica store: the pairs' puts in one chained batch, not written yet. */
export class LevelStagedPairs implements StagedPairs {
  constructor(
    readonly batch: ChainedBatch,
    readonly gen: number,
    readonly count: number,
  ) {}
}

/**
 * Verifies entries of history historyId as following `from` (entry-chain.ts) and stages
 * their data changes and the new position (seq, checksum, commit time, history) in one
 * chained batch, as views of the entries: no op objects (on the catch-up path, garbage
 * collection was a fifth of the follower's main thread). Writes nothing. A refusal drops
 * the batch.
 */
export async function stageEntries(db: Store, gen: number, entries: readonly Buffer[], historyId: Buffer, from: ChainPosition): Promise<LevelStagedEntries> {
  const batch = db.batch();
  let to: ChainPosition;
  try {
    to = stageVerified(batch, gen, entries, historyId, from);
  } catch (err) {
    // Refused before anything was written: the batch is dropped.
    await batch.close();
    throw err;
  }
  return new LevelStagedEntries(batch, gen, from, to, entries.length, entries);
}

/**
 * Stages snapshot pairs (user keys) into generation gen: their puts go straight into one
 * chained batch (no op object per pair). Writes nothing; checks nothing about the pairs
 * (their order and digest are the receiver's to verify).
 */
export function stagePairs(db: Store, gen: number, pairs: readonly { key: Buffer; value: Buffer }[]): LevelStagedPairs {
  const batch = db.batch();
  try {
    for (let i = 0; i < pairs.length; i++) {
      const { key, value } = pairs[i];
      batch.put(dataKey(gen, key), value);
    }
  } catch (err) {
    // Nothing was written: release the batch (staging is synchronous, so not awaited).
    batch.close().catch(() => undefined);
    throw err;
  }
  return new LevelStagedPairs(batch, gen, pairs.length);
}
