import { entryChecksum, entryCommitTimeMs } from '../wire/entry-codec.js';
import { LOG_PREFIX_END, logKey, metaKey, MetaName, seqOfLogKey } from '../storage/layout.js';
import type { Logger } from '../common/logger.js';
import { writeBatch, type BatchOp, type Store } from '../storage/level-store.js';
import type { FollowerRegistry } from './follower-registry.js';
import { chunkOf, splitChunk } from '../storage/log-chunk.js';
import { encodeLogBase } from '../storage/log-verify.js';
import type { Wal } from '../storage/master-log.js';

export interface RetentionPolicy {
  /** Always keep at least the newest this many entries. */
  retainEntries: bigint;
  /** Also keep entries younger than this (0: no age rule). */
  retainAgeMs: number;
  /** Also keep the newest entries up to this many bytes on disk (0: no bytes rule). */
  retainBytes: number;
  /** A follower further behind than this many entries loses its slot. */
  slotMaxLagEntries: bigint;
  /** ... or further behind than this many bytes of log on disk (0: no bytes cap). */
  slotMaxLagBytes: number;
  trimIntervalMs: number;
}

/** About this many entries are trimmed per batch (whole chunks): small batches keep each LevelDB write short, so writes never stall behind a trim. */
export const TRIM_CHUNK_ENTRIES = 1_000n;

/**
 * Trims the master's log. An entry is kept while any rule wants it: it is among the newest
 * retainEntries, younger than retainAgeMs, within the newest retainBytes, or not yet
 * applied by a follower whose slot holds. A slot stops holding (is lost, loudly) once its
 * follower is more than slotMaxLagEntries / slotMaxLagBytes behind, so one dead follower
 * cannot fill the disk; that follower gets a snapshot when it returns.
 * The newest entry is never trimmed.
 */
export class LogRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly db: Store,
    private readonly wal: Wal,
    private readonly registry: FollowerRegistry,
    private readonly policy: RetentionPolicy,
    private readonly log: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.runOnce()
        .catch((err) => this.log.error({ err: (err as Error).message }, 'log trim failed; will retry'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.policy.trimIntervalMs);
        });
    };
    this.timer = setTimeout(tick, this.policy.trimIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    // Keep the slots' latest positions across a clean restart.
    const ops = this.registry.persistOps();
    if (ops.length > 0) await writeBatch(this.db, ops, { sync: true });
  }

  /** One pass: enforce the slot cap, then trim in chunks up to the first entry to keep. */
  async runOnce(): Promise<void> {
    const { wal } = this;
    const lastSeq = wal.lastSeq;
    if (lastSeq === 0n) return;
    await this.enforceSlotCap(lastSeq);
    const keepFrom = await this.firstSeqToKeep(lastSeq);
    while (wal.firstSeq < keepFrom && !this.stopped) {
      if (!(await this.trimStep(keepFrom))) break;
    }
    const slotOps = this.registry.persistOps();
    if (slotOps.length > 0) await writeBatch(this.db, slotOps, { sync: false });
  }

  /**
   * Deletes the oldest chunks below keepFrom, about TRIM_CHUNK_ENTRIES entries' worth, in
   * one batch. A chunk that straddles keepFrom is rewritten under its key (its last seq)
   * without the entries below keepFrom, so trimming is exact to the entry.
   * Returns false when there was nothing to trim.
   */
  private async trimStep(keepFrom: bigint): Promise<boolean> {
    const { wal } = this;
    const ops: BatchOp[] = [];
    let boundary: Buffer | undefined; // the newest entry trimmed
    let newFirst = wal.firstSeq;
    const it = this.db.iterator({ gte: logKey(wal.firstSeq), lt: LOG_PREFIX_END });
    try {
      while (newFirst < keepFrom && newFirst - wal.firstSeq < TRIM_CHUNK_ENTRIES) {
        const row = await it.next();
        if (!row) break;
        const [key, value] = row;
        const last = seqOfLogKey(key);
        const entries = splitChunk(value);
        if (last < keepFrom) {
          ops.push({ type: 'del', key });
          boundary = entries[entries.length - 1];
          newFirst = last + 1n;
        } else {
          const keep = entries.length - Number(last - keepFrom) - 1; // index of keepFrom's entry
          if (keep <= 0) break;
          ops.push({ type: 'put', key, value: chunkOf(entries.slice(keep)) });
          boundary = entries[keep - 1];
          newFirst = keepFrom;
        }
      }
    } finally {
      await it.close();
    }
    if (!boundary) return false;
    ops.push({
      type: 'put',
      key: metaKey(MetaName.LOG_BASE),
      value: encodeLogBase({ seq: newFirst - 1n, checksum: entryChecksum(boundary), commitTimeMs: entryCommitTimeMs(boundary) }),
    });
    ops.push(...this.registry.persistOps());
    // Readers learn the new first seq before the entries go, so nobody is offered a
    // position that is about to disappear.
    wal.trimmedTo(newFirst);
    await writeBatch(this.db, ops, { sync: false });
    return true;
  }

  private async enforceSlotCap(lastSeq: bigint): Promise<void> {
    const { policy } = this;
    for (const r of this.registry.slots()) {
      if (r.slotLost) continue;
      const lagEntries = lastSeq - r.appliedSeq;
      let over = lagEntries > policy.slotMaxLagEntries;
      let lagBytes = 0;
      if (!over && policy.slotMaxLagBytes > 0 && lagEntries > 0n) {
        lagBytes = await this.db.approximateSize(logKey(r.appliedSeq + 1n), LOG_PREFIX_END);
        over = lagBytes > policy.slotMaxLagBytes;
      }
      if (over) {
        this.registry.markSlotLost(r);
        this.log.error(
          { followerId: r.id, appliedSeq: r.appliedSeq.toString(), lastSeq: lastSeq.toString(), lagEntries: lagEntries.toString(), lagBytes },
          `follower ${r.id} fell behind the retention cap; its slot is lost and the log no longer waits for it. It will be resynchronised by snapshot when it returns`,
        );
      }
    }
  }

  private async firstSeqToKeep(lastSeq: bigint): Promise<bigint> {
    const { policy, wal } = this;
    let keep = lastSeq - policy.retainEntries + 1n;
    // Only accepted subscriptions hold the log: a follower whose subscription is still being checked (or was refused) has no slot.
    for (const r of this.registry.slots()) if (!r.slotLost && r.appliedSeq + 1n < keep) keep = r.appliedSeq + 1n;
    if (policy.retainAgeMs > 0 && keep > wal.firstSeq) {
      const cutoff = Date.now() - policy.retainAgeMs;
      const byAge = await this.search(wal.firstSeq, keep, async (s) => entryCommitTimeMs((await wal.entryAt(s))!) >= cutoff);
      if (byAge < keep) keep = byAge;
    }
    if (policy.retainBytes > 0 && keep > wal.firstSeq) {
      // The first entry whose suffix fits in retainBytes, and one more so at least that many bytes stay.
      // keep itself is searched too: if the suffix from keep is already more than retainBytes
      // (fits = keep + 1), the bytes rule wants nothing before keep, not one entry more.
      const fits = await this.search(wal.firstSeq, keep + 1n, async (s) => (await this.db.approximateSize(logKey(s), LOG_PREFIX_END)) <= policy.retainBytes);
      const byBytes = fits > wal.firstSeq ? fits - 1n : fits;
      if (byBytes < keep) keep = byBytes;
    }
    if (keep > lastSeq) keep = lastSeq;
    return keep < wal.firstSeq ? wal.firstSeq : keep;
  }

  /** The smallest s in [lo, hi) with wanted(s), assuming wanted is monotone; hi if none. */
  private async search(lo: bigint, hi: bigint, wanted: (s: bigint) => Promise<boolean>): Promise<bigint> {
    while (lo < hi) {
      const mid = lo + (hi - lo) / 2n;
      if (await wanted(mid)) hi = mid;
      else lo = mid + 1n;
    }
    return lo;
  }
}
