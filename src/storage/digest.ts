import crypto from 'node:crypto';
import { DATA_KEY_PREFIX_BYTES, dataRange } from './layout.js';
import { SnapshotReader } from './snapshot-reader.js';
import type { Store, StoreSnapshot } from './level-store.js';

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
  private readonly stage = Buffer.allocUnsafe(STAGE_BYTES + STAGE_SLACK_BYTES);
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

  /**
   * update() for a key read as text (see SnapshotReader): the key's UTF-8 bytes from
   * byte keyStart on. Invariant: the text is exactly the stored key bytes.
   */
  updateText(key: string, value: Buffer, keyStart = 0): void {
    const keyLength = Buffer.byteLength(key, 'utf8') - keyStart;
    if (keyStart > STAGE_SLACK_BYTES) return this.update(Buffer.from(key, 'utf8'), value, keyStart);
    if (this.staged + 8 + keyLength + value.length > STAGE_BYTES) {
      this.flush();
      if (8 + keyLength + value.length > STAGE_BYTES) {
        this.update(Buffer.from(key, 'utf8'), value, keyStart);
        return;
      }
    }
    const b = this.stage;
    let o = this.staged;
    b.writeUInt32BE(keyLength, o);
    // Written whole, then moved over the skipped bytes (the stage has slack for them).
    b.write(key, o + 4, 'utf8');
    if (keyStart > 0) b.copyWithin(o + 4, o + 4 + keyStart, o + 4 + keyStart + keyLength);
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
/** Room past the stage for a text key's skipped prefix (store key prefixes are 5 bytes). */
const STAGE_SLACK_BYTES = 64;

/**
 * Hashes one generation of user data as seen by snapshot. The caller reads the seq from
 * the same snapshot, so digest and seq always describe one point in time.
 */
export async function digestData(db: Store, snapshot: StoreSnapshot, gen: number): Promise<{ digest: string; keys: bigint }> {
  const hash = new PairHasher();
  let keys = 0n;
  const reader = new SnapshotReader(db, snapshot, dataRange(gen), SCAN_CHUNK, SCAN_BYTES);
  try {
    for (;;) {
      const rows = await reader.next();
      if (rows.length === 0) break;
      for (const [k, v] of rows) {
        if (typeof k === 'string') hash.updateText(k, v, DATA_KEY_PREFIX_BYTES);
        else hash.update(k, v, DATA_KEY_PREFIX_BYTES);
      }
      keys += BigInt(rows.length);
    }
  } finally {
    await reader.close();
  }
  return { digest: hash.digest(), keys };
}
