import type { SnapshotRow } from '../wire/subscribe-encoder.js';
import type { DataSnapshot, LogBase, SnapshotRows } from './interfaces.js';
import { DATA_KEY_PREFIX_BYTES, dataRange } from './layout.js';
import type { DiskSnapshot } from './memory-disk.js';

/**
 * A point-in-time copy of a memory store's data (generation gen), with the position it
 * corresponds to, both read from one frozen disk state by the store. Rows carry the store key (DATA_KEY_PREFIX_BYTES of
 * layout prefix, then the user key), as the LevelDB snapshot's do, so a consumer that
 * forgets keyOffset fails here too.
 */
export class MemoryDataSnapshot implements DataSnapshot {
  readonly seq: bigint;
  readonly checksum: number;
  readonly commitTimeMs: number;
  readonly approxBytes: number;
  readonly keyOffset = DATA_KEY_PREFIX_BYTES;
  private readonly pairs: [Buffer, Buffer][];
  private closed = false;

  constructor(snap: DiskSnapshot, gen: number, position: LogBase) {
    this.seq = position.seq;
    this.checksum = position.checksum;
    this.commitTimeMs = position.commitTimeMs;
    const { gte, lt } = dataRange(gen);
    this.pairs = snap.range(gte, lt);
    let bytes = 0;
    for (const [k, v] of this.pairs) bytes += k.length + v.length;
    this.approxBytes = bytes;
  }

  rows(pairs: number, bytes: number): SnapshotRows {
    let next = 0;
    return {
      next: async () => {
        if (this.closed) throw new Error('the data snapshot is closed');
        // Up to `pairs` pairs; a batch ends with the pair that reaches `bytes`.
        const out: SnapshotRow[] = [];
        let size = 0;
        while (next < this.pairs.length && out.length < pairs && (out.length === 0 || size < bytes)) {
          const [k, v] = this.pairs[next++];
          out.push([Buffer.from(k), Buffer.from(v)]);
          size += k.length + v.length;
        }
        return out;
      },
      close: async () => {
        next = this.pairs.length;
      },
    };
  }

  async countKeys(signal: AbortSignal): Promise<bigint> {
    signal.throwIfAborted();
    if (this.closed) throw new Error('the data snapshot is closed');
    return BigInt(this.pairs.length);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
