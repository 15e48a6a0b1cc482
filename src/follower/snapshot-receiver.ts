import { PairHasher } from '../storage/digest.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { ReplicaStore, StagedPairs } from '../storage/interfaces.js';
import { seqFromWire } from '../wire/seq.js';
import type { KeyValue__Output } from '../wire/generated/levelreplicator/v1/KeyValue.js';
import type { SnapshotEnd__Output } from '../wire/generated/levelreplicator/v1/SnapshotEnd.js';
import type { SnapshotInfo__Output } from '../wire/generated/levelreplicator/v1/SnapshotInfo.js';

/**
 * Receives one snapshot into a staging generation next to the live data, which keeps
 * serving reads. Pairs must arrive in strictly increasing key order; the count and a
 * SHA-256 over them must match what the master sent. Only then does finish() switch the
 * follower to the new generation, atomically with the snapshot's position.
 */
export class SnapshotReceiver {
  readonly gen: number;
  readonly seq: bigint;
  keys = 0n;
  bytes = 0;
  private readonly hash = new PairHasher();
  private lastKey: Buffer | undefined;
  private begun = false;
  /** The one staging write in flight, if any (see add). */
  private pending: Promise<void> | undefined;
  private writeFailure: unknown;

  constructor(
    private readonly applier: ReplicaStore,
    private readonly info: SnapshotInfo__Output,
    private readonly historyId: Buffer,
    private readonly epoch: number,
  ) {
    this.gen = (applier.dataGen + 1) >>> 0;
    this.seq = seqFromWire(info.seq);
  }

  /** Clears whatever an earlier, interrupted snapshot left in the staging generation (once). */
  async begin(): Promise<void> {
    if (this.begun) return;
    await this.applier.clearGeneration(this.gen);
    this.begun = true;
  }

  async add(pairs: readonly KeyValue__Output[]): Promise<void> {
    // Verified and hashed before anything is staged: a refused chunk stages nothing.
    for (let i = 0; i < pairs.length; i++) {
      const { key, value } = pairs[i];
      if (key.length === 0 || (this.lastKey && Buffer.compare(this.lastKey, key) >= 0)) {
        throw new ReplicatorError(ErrorCode.CORRUPT_ENTRY, 'snapshot pairs out of order');
      }
      this.lastKey = key;
      this.hash.update(key, value);
      this.bytes += key.length + value.length;
    }
    const staged: StagedPairs = this.applier.stagePairs(this.gen, pairs);
    // One write in flight at a time, and the next chunk is prepared while it runs: the
    // write itself happens off the main thread, so waiting for it before preparing the
    // next chunk left the follower idle half of the time. Order between chunks does not
    // matter (distinct keys of a generation nothing reads yet).
    try {
      await this.settle();
    } catch (err) {
      await this.applier.discardPairs(staged);
      throw err;
    }
    // Not synced (see writePairs): finish()'s switch makes every earlier write durable.
    const p: Promise<void> = this.applier.writePairs(staged, `store pairs of the snapshot at seq ${this.seq}`).then(
      () => {
        if (this.pending === p) this.pending = undefined;
      },
      (err: unknown) => {
        this.writeFailure ??= err;
        if (this.pending === p) this.pending = undefined;
      },
    );
    this.pending = p;
    this.keys += BigInt(pairs.length);
  }

  /** True while a staging write is in flight. */
  get writing(): boolean {
    return this.pending !== undefined;
  }

  /**
   * Waits until no staging write is in flight; throws if one failed. The session calls
   * it before it ends, so an interrupted snapshot's generation is never cleared (or
   * reused by the next snapshot) while a write into it is still landing.
   */
  async settle(): Promise<void> {
    while (this.pending) await this.pending;
    if (this.writeFailure !== undefined) throw this.writeFailure;
  }

  /** Verifies the snapshot and makes it the follower's data; returns the replaced generation. */
  async finish(end: SnapshotEnd__Output): Promise<number> {
    await this.settle();
    const digest = this.hash.digest();
    if (seqFromWire(end.keys) !== this.keys || end.digest !== digest) {
      throw new ReplicatorError(
        ErrorCode.CORRUPT_ENTRY,
        `snapshot at seq ${this.seq} does not verify: received ${this.keys} keys with digest ${digest}, the master sent ${end.keys} with ${end.digest}`,
      );
    }
    return this.applier.switchToSnapshot({
      gen: this.gen,
      seq: this.seq,
      checksum: this.info.checksum,
      commitTimeMs: Number(this.info.commitTimeMs),
      historyId: this.historyId,
      epoch: this.epoch,
    });
  }
}
