import { digestData } from './digest.js';
import type { StoreView } from './interfaces.js';
import { dataKey, metaKey, MetaName } from './layout.js';
import type { Store, StoreSnapshot } from './level-store.js';

const APPLIED_SEQ_KEY = metaKey(MetaName.APPLIED_SEQ);
const DATA_GEN_KEY = metaKey(MetaName.DATA_GEN);

/**
 * Which role a store was opened for. Both roles keep the same layout (data in the
 * generation DATA_GEN names, the seq it reflects under APPLIED_SEQ, in the same batch as
 * the data), so a view reads both the same way; the kind names the role in messages only.
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
    readonly kind: StoreKind,
  ) {
    this.snapshot = db.snapshot();
  }

  seq(): Promise<bigint> {
    return appliedSeqAt(this.db, this.snapshot);
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
    this.gen ??= dataGenAt(this.db, this.snapshot);
    return this.gen;
  }
}

/** The seq a store's data reflects, as seen by a snapshot. */
export async function appliedSeqAt(db: Store, snapshot: StoreSnapshot): Promise<bigint> {
  const v = await db.get(APPLIED_SEQ_KEY, { snapshot });
  return v ? v.readBigUInt64BE() : 0n;
}

/** A store's active data generation as seen by a snapshot. */
export async function dataGenAt(db: Store, snapshot: StoreSnapshot): Promise<number> {
  const v = await db.get(DATA_GEN_KEY, { snapshot });
  return v ? v.readUInt32BE() : 0;
}
