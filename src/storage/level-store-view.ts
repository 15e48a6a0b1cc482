import { digestData } from './digest.js';
import type { StoreView } from './interfaces.js';
import { dataKey, LOG_PREFIX_END, LOG_PREFIX_START, MASTER_DATA_GEN, metaKey, MetaName, seqOfLogKey } from './layout.js';
import type { Store, StoreSnapshot } from './level-store.js';

const APPLIED_SEQ_KEY = metaKey(MetaName.APPLIED_SEQ);
const DATA_GEN_KEY = metaKey(MetaName.DATA_GEN);

/**
 * Which layout a store has: a master's (data in generation 0, its seq is its newest log
 * record) or a replica's (data in the generation DATA_GEN names, its seq is APPLIED_SEQ).
 */
export type StoreKind = 'master' | 'replica';

/**
 * One consistent state of a LevelDB store, on a LevelDB snapshot: the generation, the
 * values and the seq are read from the same snapshot, so an answer is one state's even if
 * a replica switches to a new snapshot generation or the master commits meanwhile.
 */
export class LevelStoreView implements StoreView {
  private readonly snapshot: StoreSnapshot;
  private gen: Promise<number> | undefined;

  constructor(
    private readonly db: Store,
    private readonly kind: StoreKind,
  ) {
    this.snapshot = db.snapshot();
  }

  seq(): Promise<bigint> {
    return this.kind === 'master' ? lastSeqAt(this.db, this.snapshot) : appliedSeqAt(this.db, this.snapshot);
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    return this.db.get(dataKey(await this.dataGen(), key), { snapshot: this.snapshot });
  }

  async digest(): Promise<{ digest: string; keys: bigint }> {
    return digestData(this.db, this.snapshot, await this.dataGen());
  }

  close(): Promise<void> {
    return this.snapshot.close();
  }

  private dataGen(): Promise<number> {
    this.gen ??= this.kind === 'master' ? Promise.resolve(MASTER_DATA_GEN) : dataGenAt(this.db, this.snapshot);
    return this.gen;
  }
}

/** The master's last committed seq as seen by a snapshot: the newest log key in it (chunks are keyed by their last seq). */
export async function lastSeqAt(db: Store, snapshot: StoreSnapshot): Promise<bigint> {
  const it = db.iterator({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END, reverse: true, limit: 1, values: false, snapshot });
  try {
    const row = await it.next();
    return row ? seqOfLogKey(row[0]) : 0n;
  } finally {
    await it.close();
  }
}

/** A replica's applied seq as seen by a snapshot. */
export async function appliedSeqAt(db: Store, snapshot: StoreSnapshot): Promise<bigint> {
  const v = await db.get(APPLIED_SEQ_KEY, { snapshot });
  return v ? v.readBigUInt64BE() : 0n;
}

/** A replica's active data generation as seen by a snapshot. */
export async function dataGenAt(db: Store, snapshot: StoreSnapshot): Promise<number> {
  const v = await db.get(DATA_GEN_KEY, { snapshot });
  return v ? v.readUInt32BE() : 0;
}
