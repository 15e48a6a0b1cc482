import crypto from 'node:crypto';
import { dataRange, userKeyOf } from './keys.js';
import type { Store, StoreSnapshot } from './store.js';

export interface StoreDigest {
  /** hex sha256 over every (key, value) in key order, each framed by u32 lengths. */
  digest: string;
  /** The store's seq at the snapshot the digest was taken from. */
  seq: bigint;
  keys: bigint;
}

const SCAN_CHUNK = 1000;

/**
 * The store digest: sha256 over every (key, value) in key order, each framed by its u32
 * length. One implementation for the Digest RPC, offline digests and snapshot checks.
 */
export class PairHasher {
  private readonly hash = crypto.createHash('sha256');
  private readonly len = Buffer.allocUnsafe(4);

  update(key: Buffer, value: Buffer): void {
    this.len.writeUInt32BE(key.length);
    this.hash.update(this.len);
    this.hash.update(key);
    this.len.writeUInt32BE(value.length);
    this.hash.update(this.len);
    this.hash.update(value);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * Hashes one generation of user data as seen by snapshot. The caller reads the seq from
 * the same snapshot, so digest and seq always describe one point in time.
 */
export async function digestData(db: Store, snapshot: StoreSnapshot, gen: number): Promise<{ digest: string; keys: bigint }> {
  const hash = new PairHasher();
  let keys = 0n;
  const it = db.iterator({ ...dataRange(gen), snapshot });
  try {
    for (;;) {
      const chunk = await it.nextv(SCAN_CHUNK);
      if (chunk.length === 0) break;
      for (const [k, v] of chunk) hash.update(userKeyOf(k), v);
      keys += BigInt(chunk.length);
    }
  } finally {
    await it.close();
  }
  return { digest: hash.digest(), keys };
}
