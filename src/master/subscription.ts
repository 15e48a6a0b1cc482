import type * as grpc from '@grpc/grpc-js';
import { chainsFrom, GENESIS_CHECKSUM } from '../common/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { seqFromWire, seqToWire } from '../common/seq.js';
import { parseFollowerId } from '../common/config.js';
import type { SubscribeRequest__Output } from '../common/generated/levelreplicator/v1/SubscribeRequest.js';
import type { SubscribeResponse } from '../common/generated/levelreplicator/v1/SubscribeResponse.js';
import type { FollowerRegistry } from './follower-registry.js';
import type { Wal } from './wal.js';

/** Packing: many entries per message, bounded so one message stays well under the gRPC cap. */
export const MAX_ENTRIES_PER_MESSAGE = 1_000;
export const MAX_BYTES_PER_MESSAGE = 1024 * 1024;

export type SubscribeCall = grpc.ServerWritableStream<SubscribeRequest__Output, SubscribeResponse>;

export interface SubscriptionContext {
  wal: Wal;
  registry: FollowerRegistry;
  heartbeatIntervalMs: number;
  isClosing: () => boolean;
  log: Logger;
}

/**
 * Decides whether the master can continue the follower's history from fromSeq. It can
 * only if fromSeq is in [firstSeq, lastSeq + 1] and the follower's history id and
 * checksum at fromSeq - 1 match the master's. Otherwise it refuses; it never streams
 * from any other position.
 */
export async function checkPosition(wal: Wal, req: { fromSeq: bigint; historyId: Buffer; prevChecksum: number }): Promise<void> {
  const { fromSeq, historyId, prevChecksum } = req;
  if (fromSeq < 1n) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, 'from_seq must be at least 1');
  if (fromSeq > wal.lastSeq + 1n) {
    throw new ReplicatorError(
      ErrorCode.FOLLOWER_AHEAD,
      `follower has applied up to seq ${fromSeq - 1n} but the master's last seq is ${wal.lastSeq}; refusing to roll it back or forward`,
    );
  }
  if (fromSeq === 1n) {
    if (prevChecksum !== GENESIS_CHECKSUM) throw new ReplicatorError(ErrorCode.HISTORY_MISMATCH, 'a follower at seq 0 must send the genesis checksum 0');
  } else if (!historyId.equals(wal.historyId)) {
    throw new ReplicatorError(
      ErrorCode.HISTORY_MISMATCH,
      `follower's entries belong to history ${historyId.toString('hex') || '(none)'}, the master's history is ${wal.historyId.toString('hex')}`,
    );
  }
  if (fromSeq < wal.firstSeq) {
    throw new ReplicatorError(ErrorCode.LOG_TRIMMED, `seq ${fromSeq} is no longer in the master's log, which starts at seq ${wal.firstSeq}`);
  }
  const continues =
    fromSeq === wal.lastSeq + 1n ? prevChecksum === wal.lastChecksum : chainsFrom((await wal.entryAt(fromSeq))!, prevChecksum);
  if (!continues) {
    throw new ReplicatorError(
      ErrorCode.HISTORY_MISMATCH,
      `follower's entry at seq ${fromSeq - 1n} (checksum ${prevChecksum.toString(16)}) differs from the master's`,
    );
  }
}

/** Serves one Subscribe stream until the follower goes away or the master shuts down. */
export async function serveSubscription(call: SubscribeCall, ctx: SubscriptionContext): Promise<void> {
  const { wal, registry, log } = ctx;
  const req = call.request;
  const followerId = parseFollowerId(req.followerId);
  const fromSeq = seqFromWire(req.fromSeq);
  await checkPosition(wal, { fromSeq, historyId: req.historyId, prevChecksum: req.prevChecksum });
  const record = registry.attach(followerId, call.getPeer(), req.readAddress, fromSeq);
  const flog = log.child({ followerId, peer: record.address });
  flog.info({ fromSeq: fromSeq.toString(), lastSeq: wal.lastSeq.toString() }, 'follower subscribed');
  let cancelled = false;
  const onCancel = () => {
    cancelled = true;
    wal.wake(); // a stream parked in waitForCommit notices at once
  };
  call.on('cancelled', onCancel);
  try {
    call.write({ start: { historyId: wal.historyId, fromSeq: seqToWire(fromSeq), masterLastSeq: seqToWire(wal.lastSeq) } });
    let next = fromSeq;
    let lastSendMs = Date.now();
    while (!cancelled && !ctx.isClosing()) {
      let ok: boolean;
      if (next <= wal.lastSeq) {
        const entries = await wal.read(next, MAX_ENTRIES_PER_MESSAGE, MAX_BYTES_PER_MESSAGE);
        if (cancelled) break;
        ok = call.write({ entries: { entries, masterLastSeq: seqToWire(wal.lastSeq) } });
        next += BigInt(entries.length);
        record.sentSeq = next - 1n;
        for (const e of entries) record.bytesSent += e.length;
      } else {
        // Caught up: park until the next commit, or send a heartbeat once idle long enough.
        const idleLeftMs = ctx.heartbeatIntervalMs - (Date.now() - lastSendMs);
        if (idleLeftMs > 0) {
          await wal.waitForCommit(idleLeftMs);
          continue;
        }
        ok = call.write({ heartbeat: { masterLastSeq: seqToWire(wal.lastSeq), masterTimeMs: String(Date.now()) } });
      }
      lastSendMs = Date.now();
      // Backpressure: never queue more until the transport has taken what we gave it.
      if (!ok && !cancelled) await drainedOrCancelled(call);
    }
  } finally {
    call.off('cancelled', onCancel);
    registry.detach(record);
    flog.info({ sentSeq: record.sentSeq.toString(), cancelled }, 'follower stream ended');
  }
  if (!cancelled) call.end();
}

function drainedOrCancelled(call: SubscribeCall): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    call.on('close', done);
  });
}
