import type * as grpc from '@grpc/grpc-js';
import { parseFollowerId } from '../common/config.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { Downstream, DownstreamContext } from '../follower/downstream.js';
import { FollowerRegistry } from '../master/follower-registry.js';
import { followerStatus } from '../master/follower-status.js';
import { StreamMetrics } from '../master/stream-metrics.js';
import { serveSubscription } from '../master/subscription.js';
import { SlotSaver } from './slot-saver.js';
import type { FollowerStatus } from '../wire/generated/levelreplicator/v1/FollowerStatus.js';
import { toServiceError } from '../wire/grpc-status.js';
import { seqFromWire, seqToWire } from '../wire/seq.js';

/**
 * Chained followers: a follower's Subscribe and Ack, served from its own log with the
 * master's subscription code (serveSubscription: the same continuity checks, snapshots,
 * epochs and loop refusal) and its own registry of downstream followers and their slots.
 *
 * The follower's log is trimmed by its own retention only (the newest --retain-entries
 * entries): slots here do not hold it, so a downstream follower that falls behind the
 * retained log gets a snapshot. Slots are loaded at start and saved as the master saves
 * its own (slot-saver.ts: each second when any changed, synced at close), so a follower
 * restarted after a kill -9 still lists its downstream followers at their positions, and
 * a promoted one opens them as the master's slots, which do hold the log.
 *
 * A follower that has no history yet (a new store, before its first stream) refuses
 * subscribers (FOLLOWER_UNAVAILABLE; they retry): entries it would serve must carry its
 * upstream's history id. A stream ends (cleanly; the subscriber comes back) when the
 * follower's history changes under it (a snapshot installed from its own upstream).
 */
export async function startDownstream(ctx: DownstreamContext): Promise<Downstream> {
  const { store, log } = ctx;
  const wal = store.log;
  const registry = FollowerRegistry.fromSlots(await store.loadSlots());
  // The master's follower and stream metrics, under its names, served on the follower's /metrics.
  const metrics = new StreamMetrics(ctx.registry, { wal, followers: registry });
  const slots = new SlotSaver(store, registry, log);
  slots.start();
  let closing = false;

  // A log has a history once it streamed from an upstream; a snapshot replaces it with another, never with none.
  const hasHistory = () => !wal.historyId.every((b) => b === 0);

  return {
    ready: () => !closing && hasHistory(),

    subscribe(call) {
      const historyId = Buffer.from(wal.historyId);
      if (!hasHistory()) {
        const err = new ReplicatorError(
          ErrorCode.FOLLOWER_UNAVAILABLE,
          `follower ${ctx.chain()[0]} has no history yet (it has not streamed from its upstream): subscribe again later`,
        );
        metrics.subscriptions.inc({ result: 'refused' });
        metrics.errors.inc({ code: err.code });
        call.emit('error', toServiceError(err));
        return;
      }
      serveSubscription(call, {
        store,
        cluster: ctx.cluster,
        chain: ctx.chain,
        masterAddress: ctx.masterAddress,
        registry,
        metrics,
        heartbeatIntervalMs: ctx.heartbeatIntervalMs,
        isClosing: () => closing || !wal.historyId.equals(historyId),
        log,
      }).catch((err) => {
        metrics.errors.inc({ code: isReplicatorError(err) ? err.code : ErrorCode.INTERNAL });
        log.debug({ followerId: call.request.followerId, code: err?.code, err: err?.message }, 'downstream subscription refused or failed');
        call.emit('error', toServiceError(err));
      });
    },

    ack(call, callback) {
      try {
        registry.ack(parseFollowerId(call.request.followerId), seqFromWire(call.request.appliedSeq), wal.lastSeq);
        callback(null, {});
      } catch (err) {
        metrics.errors.inc({ code: isReplicatorError(err) ? err.code : ErrorCode.INTERNAL });
        callback(toServiceError(err) as grpc.ServiceError);
      }
    },

    async status() {
      const now = Date.now();
      const followers: FollowerStatus[] = [];
      for (const f of registry.list()) {
        // Slots here do not hold the follower's log (see above): they make it keep nothing.
        followers.push({ ...(await followerStatus(f, wal, now)), slotEntries: '0', slotBytes: '0' });
      }
      return { followers, firstSeq: seqToWire(wal.firstSeq), lastSeq: seqToWire(wal.lastSeq), historyId: wal.historyId, epoch: wal.epoch };
    },

    async close() {
      if (closing) return;
      closing = true;
      wal.wake(); // parked streams see `closing` and end
      try {
        await slots.stop();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'saving the downstream followers\' slots failed');
      }
    },
  };
}
