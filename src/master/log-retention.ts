import { entryCommitTimeMs } from '../wire/entry-codec.js';
import type { Logger } from '../common/logger.js';
import type { MasterStore, SlotRecord } from '../storage/interfaces.js';
import type { FollowerRegistry } from './follower-registry.js';
import type { FollowerRecord } from './follower-record.js';

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

/** About this many entries are trimmed per step (one store write each): small steps keep each write short, so commits never stall behind a trim. */
export const TRIM_CHUNK_ENTRIES = 1_000n;

/**
 * Trims the master's log. An entry is kept while any rule wants it: it is among the newest
 * retainEntries, younger than retainAgeMs, within the newest retainBytes, or not yet
 * applied by a follower whose slot holds. A slot stops holding (is lost, loudly) once its
 * follower is more than slotMaxLagEntries / slotMaxLagBytes behind, so one dead follower
 * cannot fill the disk. When that follower returns it resumes from the log if its next entry
 * is still retained (other rules may keep it), and gets a snapshot only if it was trimmed.
 * The newest entry is never trimmed.
 */
export class LogRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Slots taken from the registry for a write that has not succeeded yet: written with the next one. */
  private unsaved: readonly SlotRecord[] = [];
  /** Followers whose slots were dropped and whose stored records are not deleted yet (retried each pass). */
  private readonly undeleted = new Set<number>();
  /** Store writes of slots run one at a time (a pass, a drop, the final save), so a dropped slot is never written back. */
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: MasterStore,
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
    await this.exclusive(async () => {
      await this.deleteDropped(true);
      // Keep the slots' latest positions across a clean restart.
      await this.store.saveSlots(this.takeSlots(), true);
      this.unsaved = [];
    });
  }

  /**
   * Drops a follower's slot (FollowerRegistry.drop: SLOT_NOT_FOUND, FOLLOWER_CONNECTED
   * without force) and deletes it from the store, durably, before it resolves. The
   * registry forgets it at once; the log stops being held for it at the next pass. If the
   * delete fails (STORE_FAILED), it is retried at every pass until it succeeds.
   */
  async dropSlot(id: number, force: boolean): Promise<{ record: FollowerRecord; wasConnected: boolean }> {
    const dropped = this.registry.drop(id, force);
    this.undeleted.add(id);
    await this.exclusive(() => this.deleteDropped(true));
    return dropped;
  }

  /** One pass: enforce the slot cap, then trim in steps up to the first entry to keep. */
  runOnce(): Promise<void> {
    return this.exclusive(() => this.pass());
  }

  private exclusive<T>(body: () => Promise<T>): Promise<T> {
    const run = this.lock.then(body, body);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Deletes the stored records of dropped slots (run under the lock, so no slot write of a pass races it). */
  private async deleteDropped(sync: boolean): Promise<void> {
    if (this.undeleted.size === 0) return;
    // A slot write not yet done must not bring a dropped slot back.
    this.unsaved = this.unsaved.filter((s) => !this.undeleted.has(s.followerId));
    for (const id of [...this.undeleted]) {
      // A follower that subscribed again since has a new slot: it is saved, not deleted.
      if (!this.registry.slots().some((r) => r.id === id)) await this.store.dropSlot(id, sync);
      this.undeleted.delete(id);
    }
  }

  private async pass(): Promise<void> {
    const wal = this.store.log;
    await this.deleteDropped(false);
    const lastSeq = wal.lastSeq;
    if (lastSeq === 0n) return;
    await this.enforceSlotCap(lastSeq);
    const keepFrom = await this.firstSeqToKeep(lastSeq);
    while (wal.firstSeq < keepFrom && !this.stopped) {
      // Slot positions go in the same write as the trim they allow.
      const before = wal.firstSeq;
      const after = await wal.trimTo(keepFrom, TRIM_CHUNK_ENTRIES, this.takeSlots());
      this.unsaved = [];
      if (after === before) break;
    }
    await this.store.saveSlots(this.takeSlots(), false);
    this.unsaved = [];
  }

  /**
   * Every slot if any changed since the last successful write (a takeDirtySlots() list is
   * all of them, so a newer one replaces an unsaved one), else none.
   */
  private takeSlots(): readonly SlotRecord[] {
    const dirty = this.registry.takeDirtySlots();
    if (dirty.length > 0) this.unsaved = dirty;
    return this.unsaved;
  }

  private async enforceSlotCap(lastSeq: bigint): Promise<void> {
    const { policy } = this;
    for (const r of this.registry.slots()) {
      if (r.slotLost) continue;
      const lagEntries = lastSeq - r.appliedSeq;
      let over = lagEntries > policy.slotMaxLagEntries;
      let lagBytes = 0;
      if (!over && policy.slotMaxLagBytes > 0 && lagEntries > 0n) {
        lagBytes = await this.store.log.bytesFrom(r.appliedSeq + 1n);
        over = lagBytes > policy.slotMaxLagBytes;
      }
      if (over) {
        this.registry.markSlotLost(r);
        this.log.error(
          { followerId: r.id, appliedSeq: r.appliedSeq.toString(), lastSeq: lastSeq.toString(), lagEntries: lagEntries.toString(), lagBytes },
          `follower ${r.id} fell behind the retention cap; its slot is lost and the log no longer waits for it. When it returns it resumes from the log if its next entry (seq ${r.appliedSeq + 1n}) is still retained, and is resynchronised by snapshot if that entry was trimmed`,
        );
      }
    }
  }

  private async firstSeqToKeep(lastSeq: bigint): Promise<bigint> {
    const { policy } = this;
    const wal = this.store.log;
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
      const fits = await this.search(wal.firstSeq, keep + 1n, async (s) => (await wal.bytesFrom(s)) <= policy.retainBytes);
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
