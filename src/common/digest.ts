import crypto from 'node:crypto';
import { dataRange } from './keys.js';
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
 * Hashes one generation of user data as seen by snapshot. The caller reads the seq from
 * the same snapshot, so digest and seq always describe one point in time.
 */
export async function digestData(db: Store, snapshot: StoreSnapshot, gen: number): Promise<{ digest: string; keys: bigint }> {
  const hash = crypto.createHash('sha256');
  const len = Buffer.allocUnsafe(4);
  let keys = 0n;
  const it = db.iterator({ ...dataRange(gen), snapshot });
  try {
    for (;;) {
      const chunk = await it.nextv(SCAN_CHUNK);
      if (chunk.length === 0) break;
      for (const [k, v] of chunk) {
        const userKey = k.subarray(5);
        len.writeUInt32BE(userKey.length);
        hash.update(len);
        hash.update(userKey);
        len.writeUInt32BE(v.length);
        hash.update(len);
        hash.update(v);
      }
      keys += BigInt(chunk.length);
    }
  } finally {
    await it.close();
  }
  return { digest: hash.digest('hex'), keys };
}
