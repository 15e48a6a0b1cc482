import { entryChecksum, entryCommitTimeMs } from '../wire/entry-codec.js';
import type { SnapshotRow } from '../wire/subscribe-encoder.js';
import type { DataSnapshot, SnapshotRows } from './interfaces.js';
import { DATA_KEY_PREFIX_BYTES, dataRange, logKey, MASTER_DATA_GEN } from './layout.js';
import type { DiskSnapshot } from './memory-disk.js';

/**
 * A point-in-time copy of a memory master's data, with the position it corresponds to,
 * both read from one frozen disk state. Rows carry the store key (DATA_KEY_PREFIX_BYTES of
 * layout prefix, then the user key), as the LevelDB snapshot's do, so a consumer that
 * forgets keyOffset fails here too.
 */
export class MemoryDataSnapshot implements DataSnapshot {
  readonly checksum: number;
  readonly commitTimeMs: number;
  readonly approxBytes: number;
  readonly keyOffset = DATA_KEY_PREFIX_BYTES;
  private readonly pairs: [Buffer, Buffer][];
  private closed = false;

  constructor(
    snap: DiskSnapshot,
    readonly seq: bigint,
    /** Checksum and commit time when the log holds no entry at seq (a log emptied by a repair: its base). */
    fallback: { checksum: number; commitTimeMs: number },
  ) {
    const entry = seq > 0n ? snap.get(logKey(seq)) : undefined;
    this.checksum = entry ? entryChecksum(entry) : seq > 0n ? fallback.checksum : 0;
    this.commitTimeMs = entry ? entryCommitTimeMs(entry) : seq > 0n ? fallback.commitTimeMs : 0;
    const { gte, lt } = dataRange(MASTER_DATA_GEN);
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
