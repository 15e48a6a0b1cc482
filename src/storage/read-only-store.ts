import type { ReadableStore, StoreView } from './interfaces.js';
import { LevelStoreView, type StoreKind } from './level-store-view.js';
import { openStore, type Store } from './level-store.js';

/**
 * Opens the existing store of a stopped node to read it (offline get-data, store-digest):
 * nothing is created, verified or written. STORE_NOT_FOUND when the data directory holds
 * no store; DATA_DIR_LOCKED while a process has it open.
 */
export async function openStoreForReading(dataDir: string, kind: StoreKind): Promise<ReadableStore> {
  return new ReadOnlyStore(await openStore(dataDir, { create: false }), kind);
}

class ReadOnlyStore implements ReadableStore {
  constructor(
    private readonly db: Store,
    private readonly kind: StoreKind,
  ) {}

  view(): StoreView {
    return new LevelStoreView(this.db, this.kind);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
