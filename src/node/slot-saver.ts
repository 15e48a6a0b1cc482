import type { Logger } from '../common/logger.js';
import type { FollowerRegistry } from '../master/follower-registry.js';
import type { ServingStore, SlotRecord } from '../storage/interfaces.js';

/** How often a follower saves its downstream followers' slots: the master's default --trim-interval-ms, at which it saves its own. */
export const SLOT_SAVE_INTERVAL_MS = 1_000;

/**
 * Saves the replication slots of a follower's downstream followers the way the master saves
 * its own (LogRetention: each pass writes the slots if any changed, without fsync; the
 * final save at a clean stop is synced). So a kill -9 of the follower loses no slot
 * position but what changed in the last interval, and a power loss at most what LevelDB
 * had not synced; before, they were written only at a clean close and a kill -9 lost them all.
 *
 * Invariant: one write at a time, in the order taken (each pass is scheduled after the
 * last one ended, and stop() waits for it), so an older position never lands after a
 * newer one. A failed write is retried with the next pass (its slots stay unsaved).
 */
export class SlotSaver {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Slots taken from the registry whose write has not succeeded yet. */
  private unsaved: readonly SlotRecord[] = [];

  constructor(
    private readonly store: ServingStore,
    private readonly registry: FollowerRegistry,
    private readonly log: Logger,
    private readonly intervalMs = SLOT_SAVE_INTERVAL_MS,
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.save(false)
        .catch((err) => this.log.warn({ err: (err as Error).message }, 'saving the downstream followers\' slots failed; will retry'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.intervalMs);
  }

  /** Ends the passes and saves every slot, synced (a clean stop keeps their latest positions). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    this.registry.takeDirtySlots();
    this.unsaved = this.registry.slots().map((r) => ({ followerId: r.id, appliedSeq: r.appliedSeq, lost: r.slotLost }));
    await this.save(true);
  }

  private async save(sync: boolean): Promise<void> {
    // takeDirtySlots() lists every slot when any changed: a newer list replaces an unsaved one.
    const dirty = this.registry.takeDirtySlots();
    if (dirty.length > 0) this.unsaved = dirty;
    if (this.unsaved.length === 0) return;
    await this.store.saveSlots(this.unsaved, sync);
    this.log.debug({ slots: this.unsaved.map((s) => ({ followerId: s.followerId, appliedSeq: s.appliedSeq.toString(), lost: s.lost })), sync }, 'downstream followers\' slots saved');
    this.unsaved = [];
  }
}
