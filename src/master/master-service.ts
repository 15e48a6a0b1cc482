import type * as grpc from '@grpc/grpc-js';
import { parseFollowerId } from '../common/config.js';
import { waitBudgetMs } from '../wire/deadline.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { toServiceError } from '../wire/grpc-status.js';
import type { Logger } from '../common/logger.js';
import { VERSION } from '../common/version.js';
import { seqFromWire, seqToWire } from '../wire/seq.js';
import type { MasterServiceHandlers } from '../wire/master-handlers.js';
import type { FollowerStatus } from '../wire/generated/levelreplicator/v1/FollowerStatus.js';
import type { WriteResponse } from '../wire/generated/levelreplicator/v1/WriteResponse.js';
import { resolveAckPolicy, type AckPolicy } from './ack-policy.js';
import type { AckWaiters } from './ack-waiters.js';
import type { FollowerRegistry } from './follower-registry.js';
import type { CommitResult, GroupCommitter } from './group-commit.js';
import type { MasterMetrics } from './metrics.js';
import { serveSubscription } from './subscription.js';
import type { MasterStore } from '../storage/interfaces.js';
import type { WriteGate } from './write-gate.js';
import type { WriteRate } from './write-rate.js';
import type { LogRetention } from './log-retention.js';
import { slotHold } from './slot-hold.js';
import { followerStatus } from './follower-status.js';
import type { WriteFence } from './write-fence.js';
import type { ClusterView } from '../common/cluster-view.js';

export interface MasterServiceContext {
  store: MasterStore;
  committer: GroupCommitter;
  registry: FollowerRegistry;
  acks: AckWaiters;
  gate: WriteGate;
  ackDefaults: AckPolicy;
  metrics: MasterMetrics;
  writeRate: WriteRate;
  /** Owns slot persistence: DropSlot goes through it so a dropped slot is never written back. */
  retention: LogRetention;
  heartbeatIntervalMs: number;
  isClosing: () => boolean;
  log: Logger;
  /** Epoch fencing and switchover pauses of the write path. */
  fence: WriteFence;
  cluster: ClusterView;
  /** Where this master serves (its own address, for Status and StreamStart). */
  address: () => string;
}

export function masterHandlers(ctx: MasterServiceContext): MasterServiceHandlers {
  const { store, committer, registry, acks, gate, metrics, log } = ctx;
  const wal = store.log;

  /** Answers a unary call from an async body; every error goes through toServiceError and is counted. */
  function unary<Req, Res>(body: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      body(call.request, call).then(
        (res) => callback(null, res),
        (err) => {
          metrics.errors.inc({ code: isReplicatorError(err) ? err.code : ErrorCode.INTERNAL });
          callback(toServiceError(err) as grpc.ServiceError);
        },
      );
    };
  }

  return {
    Write: unary(async (req, call) => {
      const started = process.hrtime.bigint();
      let waited = false;
      try {
        // Checked and packed as it was decoded (write-request-decoder.ts); throws the limit it broke.
        const writes = req.prepared();
        let committed: CommitResult;
        try {
          ctx.fence.check(req.epoch ?? 0); // deposed or paused: refuse before anything is written
          await gate.check(); // --min-followers: refuse before anything is written
          committed = await committer.submitPrepared(writes);
        } finally {
          // Committed (its entries encoded and written) or refused: the body's memory is reused.
          writes.release();
        }
        const { firstSeq, lastSeq } = committed;
        metrics.writes.inc(writes.count);
        metrics.writeBytes.inc(writes.bytes);
        ctx.writeRate.record(writes.count);
        // The commit is done and the committer is free: waiting here holds up only this call.
        const policy = resolveAckPolicy(req.ack, ctx.ackDefaults, waitBudgetMs(call));
        const requested = policy.followers;
        let ackStatus: WriteResponse['ackStatus'] = 'COMMITTED';
        let acked = registry.durableAckCount(lastSeq);
        if (requested > 0) {
          waited = true;
          const outcome = await acks.wait(lastSeq, requested, policy.timeoutMs);
          acked = outcome.acked;
          ackStatus = outcome.reached ? 'REPLICATED' : 'REPLICATION_TIMEOUT';
          if (!outcome.reached) {
            log.debug({ lastSeq: lastSeq.toString(), requested, acked, timeoutMs: policy.timeoutMs }, 'write committed but not acknowledged by enough followers in time');
          }
        }
        // Deposed while this write was committed or waited: it is not acknowledged.
        ctx.fence.checkAnswer(lastSeq);
        metrics.writeRequests.inc({ result: ackStatus.toLowerCase() });
        return { firstSeq: seqToWire(firstSeq), lastSeq: seqToWire(lastSeq), ackStatus, followersRequested: requested, followersAcked: acked, epoch: wal.epoch };
      } catch (err) {
        metrics.writeRequests.inc({ result: 'error' });
        throw err;
      } finally {
        metrics.writeDuration.observe({ ack: waited ? 'followers' : 'master' }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    }),

    Subscribe(call) {
      const nodeId = ctx.cluster.nodeId;
      serveSubscription(call, { ...ctx, chain: () => (nodeId ? [nodeId] : []), masterAddress: ctx.address }).catch((err) => {
        metrics.errors.inc({ code: isReplicatorError(err) ? err.code : ErrorCode.INTERNAL });
        // debug: the server guard already logs every refused call once, at warn.
        log.debug({ followerId: call.request.followerId, code: err?.code, err: err?.message }, 'subscription refused or failed');
        call.emit('error', toServiceError(err));
      });
    },

    Ack: unary(async (req) => {
      registry.ack(parseFollowerId(req.followerId), seqFromWire(req.appliedSeq), wal.lastSeq);
      return {};
    }),

    Status: unary(async () => {
      const now = Date.now();
      const lastSeq = wal.lastSeq;
      const followers: FollowerStatus[] = [];
      for (const f of registry.list()) {
        followers.push({ ...(await followerStatus(f, wal, now)), ...(await slotHold(registry, wal, f)) });
      }
      const g = await gate.state(now);
      return {
        firstSeq: seqToWire(wal.firstSeq),
        lastSeq: seqToWire(lastSeq),
        historyId: wal.historyId,
        epoch: wal.epoch,
        masterTimeMs: String(now),
        followers,
        writeRate: ctx.writeRate.rate(now),
        minFollowers: gate.options.minFollowers,
        minFollowersMaxLagMs: String(gate.options.maxLagMs),
        goodFollowers: g.good,
        acceptingWrites: gate.options.minFollowers === 0 || g.accepting,
        defaultAckFollowers: ctx.ackDefaults.followers,
        defaultAckTimeoutMs: ctx.ackDefaults.timeoutMs,
        version: VERSION,
        role: ctx.fence.deposed ? 'deposed' : 'master',
        logBytes: String(await wal.bytesFrom(wal.firstSeq)),
        nodeId: ctx.cluster.nodeId ?? 0,
        epochs: wal.epochs.map((e) => ({ epoch: e.epoch, firstSeq: seqToWire(e.firstSeq) })),
        masterAddress: ctx.fence.deposed ? ctx.cluster.masterAddress : ctx.address(),
        seenEpoch: Math.max(ctx.cluster.seenEpoch, wal.epoch),
      };
    }),

    DropSlot: unary(async (req) => {
      const id = parseFollowerId(req.followerId);
      const firstSeq = wal.firstSeq;
      let dropped: Awaited<ReturnType<LogRetention['dropSlot']>>;
      try {
        dropped = await ctx.retention.dropSlot(id, req.force);
      } catch (err) {
        if (isReplicatorError(err)) throw err;
        throw new ReplicatorError(
          ErrorCode.STORE_FAILED,
          `the slot of follower ${id} was dropped, but deleting its record from the store failed (retried at every retention pass): ${(err as Error)?.message ?? err}`,
          { cause: err },
        );
      }
      const { record, wasConnected } = dropped;
      log.warn(
        { followerId: id, appliedSeq: record.appliedSeq.toString(), slotLost: record.slotLost, wasConnected, firstSeq: firstSeq.toString() },
        `replication slot of follower ${id} dropped; the log no longer waits for it`,
      );
      return { appliedSeq: seqToWire(record.appliedSeq), wasConnected, slotLost: record.slotLost, firstSeq: seqToWire(firstSeq) };
    }),
  };
}
