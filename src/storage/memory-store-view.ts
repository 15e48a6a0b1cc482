import { PairHasher } from './digest.js';
import type { StoreView } from './interfaces.js';
import { DATA_KEY_PREFIX_BYTES, dataKey, dataRange } from './layout.js';
import type { DiskSnapshot } from './memory-disk.js';

/**
 * One consistent state of a memory store: a frozen disk state, the generation its data is
 * in and the seq it reflects, all read from that one state (as LevelStoreView reads them
 * from one LevelDB snapshot), so a later commit, apply or snapshot switch is never seen.
 */
export class MemoryStoreView implements StoreView {
  private closed = false;

  constructor(
    private readonly snap: DiskSnapshot,
    private readonly gen: number,
    private readonly seqValue: bigint,
  ) {}

  async seq(): Promise<bigint> {
    this.check();
    return this.seqValue;
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.check();
    const v = this.snap.get(dataKey(this.gen, key));
    return v && Buffer.from(v);
  }

  async digest(): Promise<{ digest: string; keys: bigint }> {
    this.check();
    return digestGeneration(this.snap, this.gen);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private check(): void {
    if (this.closed) throw new Error('the store view is closed');
  }
}

/** The store digest (digest.ts) of one generation's user data as a disk state holds it. */
export function digestGeneration(snap: DiskSnapshot, gen: number): { digest: string; keys: bigint } {
  const hash = new PairHasher();
  const { gte, lt } = dataRange(gen);
  const rows = snap.range(gte, lt);
  for (const [k, v] of rows) hash.update(k, v, DATA_KEY_PREFIX_BYTES);
  return { digest: hash.digest(), keys: BigInt(rows.length) };
}
