import crypto from 'node:crypto';
import { DATA_KEY_PREFIX_BYTES, dataRange } from './keys.js';
import type { Store, StoreSnapshot } from './store.js';

export interface StoreDigest {
  /** hex sha256 over every (key, value) in key order, each framed by u32 lengths. */
  digest: string;
  /** The store's seq at the snapshot the digest was taken from. */
  seq: bigint;
  keys: bigint;
}

const SCAN_CHUNK = 1000;
/** Bytes one nextv() may read: classic-level's 16 KiB default ends most calls after ~130 pairs, a thread-pool trip each. */
const SCAN_BYTES = 1024 * 1024;

/**
 * The store digest: sha256 over every (key, value) in key order, each framed by its u32
 * length. One implementation for the Digest RPC, offline digests and snapshot checks.
 */
export class PairHasher {
  private readonly hash = crypto.createHash('sha256');
  /** Framed pairs waiting to be hashed: one hash update per STAGE_BYTES, not four per pair. */
  private readonly stage = Buffer.allocUnsafe(STAGE_BYTES);
  private staged = 0;

  /** Hashes the pair (key[keyStart, keyEnd), value): the bounds skip a store key's prefix, or pick a key out of a larger buffer, without a view. */
  update(key: Buffer, value: Buffer, keyStart = 0, keyEnd = key.length): void {
    const keyLength = keyEnd - keyStart;
    if (this.staged + 8 + keyLength + value.length > STAGE_BYTES) {
      this.flush();
      if (8 + keyLength + value.length > STAGE_BYTES) {
        // A pair larger than the stage: hash it directly, framing and all.
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32BE(keyLength);
        this.hash.update(len).update(key.subarray(keyStart, keyEnd));
        len.writeUInt32BE(value.length);
        this.hash.update(len).update(value);
        return;
      }
    }
    const b = this.stage;
    let o = this.staged;
    b.writeUInt32BE(keyLength, o);
    key.copy(b, o + 4, keyStart, keyEnd);
    o += 4 + keyLength;
    b.writeUInt32BE(value.length, o);
    b.set(value, o + 4);
    this.staged = o + 4 + value.length;
  }

  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }

  private flush(): void {
    if (this.staged > 0) this.hash.update(this.stage.subarray(0, this.staged));
    this.staged = 0;
  }
}

const STAGE_BYTES = 64 * 1024;

/**
 * Hashes one generation of user data as seen by snapshot. The caller reads the seq from
 * the same snapshot, so digest and seq always describe one point in time.
 */
export async function digestData(db: Store, snapshot: StoreSnapshot, gen: number): Promise<{ digest: string; keys: bigint }> {
  const hash = new PairHasher();
  let keys = 0n;
  const it = db.iterator({ ...dataRange(gen), snapshot, highWaterMarkBytes: SCAN_BYTES });
  try {
    for (;;) {
      const chunk = await it.nextv(SCAN_CHUNK);
      if (chunk.length === 0) break;
      for (const [k, v] of chunk) hash.update(k, v, DATA_KEY_PREFIX_BYTES);
      keys += BigInt(chunk.length);
    }
  } finally {
    await it.close();
  }
  return { digest: hash.digest(), keys };
}
