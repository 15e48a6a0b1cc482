import type * as grpc from '@grpc/grpc-js';
import { parseFollowerId } from '../common/config.js';
import { entryCommitTimeMs } from '../common/entry-codec.js';
import { toServiceError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { seqFromWire, seqToWire } from '../common/seq.js';
import { validateWrites } from '../common/write-validation.js';
import type { MasterHandlers } from '../common/generated/levelreplicator/v1/Master.js';
import type { FollowerStatus } from '../common/generated/levelreplicator/v1/FollowerStatus.js';
import type { FollowerRegistry } from './follower-registry.js';
import type { GroupCommitter } from './group-commit.js';
import { serveSubscription } from './subscription.js';
import type { Wal } from './wal.js';

export interface MasterServiceContext {
  wal: Wal;
  committer: GroupCommitter;
  registry: FollowerRegistry;
  heartbeatIntervalMs: number;
  isClosing: () => boolean;
  log: Logger;
}

/** Answers a unary call from an async body; every error goes through toServiceError. */
function unary<Req, Res>(body: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    body(call.request).then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(err) as grpc.ServiceError),
    );
  };
}

export function masterHandlers(ctx: MasterServiceContext): MasterHandlers {
  const { wal, committer, registry, log } = ctx;
  return {
    Write: unary(async (req) => {
      const { writes, bytes } = validateWrites(req.writes);
      const { firstSeq, lastSeq } = await committer.submit(writes, bytes);
      return { firstSeq: seqToWire(firstSeq), lastSeq: seqToWire(lastSeq) };
    }),

    Subscribe(call) {
      serveSubscription(call, ctx).catch((err) => {
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
        followers.push({
          followerId: f.id,
          connected: f.connected,
          appliedSeq: seqToWire(f.appliedSeq),
          lagEntries: seqToWire(lastSeq > f.appliedSeq ? lastSeq - f.appliedSeq : 0n),
          lagMs: String(await lagMs(wal, f.appliedSeq, now)),
          address: f.address,
          readAddress: f.readAddress,
          lastAckTimeMs: String(f.lastAckTimeMs),
          slotLost: f.slotLost,
          snapshotting: f.snapshotting,
        });
      }
      return {
        firstSeq: seqToWire(wal.firstSeq),
        lastSeq: seqToWire(lastSeq),
        historyId: wal.historyId,
        epoch: wal.epoch,
        masterTimeMs: String(now),
        followers,
      };
    }),
  };
}

/**
 * Replication lag in ms: how long ago the oldest entry the follower has not applied was
 * committed on the master; 0 when it has applied everything.
 */
async function lagMs(wal: Wal, appliedSeq: bigint, now: number): Promise<number> {
  if (appliedSeq >= wal.lastSeq) return 0;
  const oldest = appliedSeq + 1n < wal.firstSeq ? wal.firstSeq : appliedSeq + 1n;
  const entry = await wal.entryAt(oldest);
  return entry ? Math.max(0, now - entryCommitTimeMs(entry)) : 0;
}
