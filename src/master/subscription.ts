import type * as grpc from '@grpc/grpc-js';
import { parseAddress, parseFollowerId } from '../common/config.js';
import { chainsFrom, entryChecksum, entrySeq, GENESIS_CHECKSUM } from '../wire/entry-codec.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { seqFromWire, seqToWire } from '../wire/seq.js';
import type { SubscribeRequest__Output } from '../wire/generated/levelreplicator/v1/SubscribeRequest.js';
import type { FollowerRegistry } from './follower-registry.js';
import type { StreamMetrics } from './stream-metrics.js';
import { snapshotInfo, streamSnapshot } from './snapshot-sender.js';
import { EncodedResponse, encodeEntryBatchResponse, type SubscribeResponseOut } from '../wire/subscribe-encoder.js';
import type { ReplicationLog, ServingStore } from '../storage/interfaces.js';
import { forkSeq, type EpochHistory } from '../storage/epoch-history.js';
import { historyFromWire, historyToWire } from '../wire/epoch-wire.js';
import type { ClusterView } from '../common/cluster-view.js';

/** Packing: many entries per message, bounded so one message stays well under the gRPC cap. */
export const MAX_ENTRIES_PER_MESSAGE = 1_000;
export const MAX_BYTES_PER_MESSAGE = 1024 * 1024;
/**
 * Payload bytes (log entries, snapshot pairs) written to a stream but not yet taken by the
 * transport. grpc-js queues up to
 * 16 messages before write() returns false, i.e. up to 16 MiB per stream; a follower that
 * stops reading (or a hostile client that never reads) holds at most this much instead.
 */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/** A Subscribe stream: it takes messages, and entry batches and snapshot chunks already encoded. */
export type SubscribeCall = grpc.ServerWritableStream<SubscribeRequest__Output, SubscribeResponseOut>;

export interface SubscriptionContext {
  /** The store whose log is served: the master's, or a follower's own (chained followers). */
  store: ServingStore;
  cluster: ClusterView;
  /** Node ids from this node up to the master (this node first; empty when it has no id). */
  chain: () => number[];
  /** The master as this node knows it (its own address when it is the master). */
  masterAddress: () => string;
  registry: FollowerRegistry;
  /** The master's metrics, or a follower's for its downstream followers (same names). */
  metrics: StreamMetrics;
  heartbeatIntervalMs: number;
  isClosing: () => boolean;
  log: Logger;
}

export type StreamPlan = { mode: 'log' } | { mode: 'snapshot'; reason: string; forkSeq?: bigint };

/**
 * Decides how to bring a follower, at (fromSeq, historyId, prevChecksum, epochs), to this
 * node's history. A follower that has seen a newer epoch than this node's is refused
 * (STALE_EPOCH: this node is behind the cluster). A follower whose epoch history forks from
 * this node's before its applied seq gets a snapshot with the fork seq, so it can put its
 * entries after the fork in a rollback file first (docs/roles.md). Otherwise the log is
 * streamed only if this node can continue exactly that history from exactly fromSeq. A
 * follower with nothing applied, whose position was trimmed, or whose entries are not this
 * node's gets a snapshot (the reason is logged with both positions). A follower ahead of
 * this node on its own history is refused: it is never silently rolled back or forward.
 */
export async function planStream(
  wal: ReplicationLog,
  req: { fromSeq: bigint; historyId: Buffer; prevChecksum: number; epochs?: EpochHistory; seenEpoch?: number },
): Promise<StreamPlan> {
  const { fromSeq, historyId, prevChecksum } = req;
  const appliedSeq = fromSeq - 1n;
  if (fromSeq < 1n) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, 'from_seq must be at least 1');
  const seenEpoch = req.seenEpoch ?? 0;
  if (seenEpoch > wal.epoch) {
    throw new ReplicatorError(
      ErrorCode.STALE_EPOCH,
      `this node is at epoch ${wal.epoch}, the follower has seen epoch ${seenEpoch}: it must not follow an older epoch's node`,
    );
  }
  const masterPos = `master history ${wal.historyId.toString('hex')} epoch ${wal.epoch} at seq ${wal.lastSeq} (log ${wal.firstSeq}..${wal.lastSeq})`;
  // Where the follower's epochs part from ours: its entries after that seq were committed
  // by a master whose epoch our history ended before (a deposed master's unreplicated writes).
  const fork = appliedSeq > 0n && req.epochs ? forkSeq(req.epochs, wal.epochs) : undefined;
  if (fork !== undefined && appliedSeq > fork) {
    return {
      mode: 'snapshot',
      forkSeq: fork,
      reason: `diverged at seq ${fork}: the follower's entries ${fork + 1n}..${appliedSeq} belong to an epoch this history ended before them; ${masterPos}`,
    };
  }
  if (appliedSeq === 0n) {
    if (prevChecksum !== GENESIS_CHECKSUM) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, 'a follower at seq 0 must send the genesis checksum 0');
    if (wal.lastSeq === 0n) return { mode: 'log' };
    return { mode: 'snapshot', reason: `new follower; ${masterPos}` };
  }
  const followerPos = `follower history ${historyId.toString('hex') || '(none)'} at seq ${appliedSeq}`;
  if (!historyId.equals(wal.historyId)) return { mode: 'snapshot', reason: `history mismatch: ${followerPos}, ${masterPos}` };
  if (fromSeq > wal.lastSeq + 1n) {
    throw new ReplicatorError(
      ErrorCode.FOLLOWER_AHEAD,
      `follower has applied up to seq ${appliedSeq} but the master's last seq is ${wal.lastSeq} on the same history; refusing to roll it back or forward`,
    );
  }
  if (fromSeq < wal.firstSeq) return { mode: 'snapshot', reason: `log trimmed: ${followerPos}, ${masterPos}` };
  const entry = fromSeq <= wal.lastSeq ? await wal.entryAt(fromSeq) : undefined;
  if (fromSeq <= wal.lastSeq && !entry) return { mode: 'snapshot', reason: `log trimmed: ${followerPos}, ${masterPos}` };
  const continues = entry ? chainsFrom(entry, prevChecksum) : prevChecksum === wal.lastChecksum;
  if (!continues) {
    const mine = await wal.checksumAt(appliedSeq);
    // The follower is on the master's history at appliedSeq, yet the master's own next entry
    // does not chain from it: that entry is damaged (on disk, after start-up verification),
    // not the follower. A snapshot would serve past it; refuse, as streaming does.
    if (entry && mine === prevChecksum) throw corruptEntry(fromSeq);
    const master = mine === undefined ? 'no longer in its log' : mine.toString(16);
    return {
      mode: 'snapshot',
      reason: `diverged: ${followerPos} has checksum ${prevChecksum.toString(16)}, the master's checksum at seq ${appliedSeq} is ${master}; ${masterPos}`,
    };
  }
  return { mode: 'log' };
}

/** Serves one Subscribe stream until the follower goes away or the master shuts down. */
export async function serveSubscription(call: SubscribeCall, ctx: SubscriptionContext): Promise<void> {
  const { store, registry, log } = ctx;
  const wal = store.log;
  const req = call.request;
  const followerId = parseFollowerId(req.followerId);
  const fromSeq = seqFromWire(req.fromSeq);
  const chain = ctx.chain();
  if (chain.includes(followerId)) {
    throw new ReplicatorError(
      ErrorCode.FOLLOW_LOOP,
      followerId === chain[0]
        ? `node ${followerId} cannot follow itself`
        : `node ${followerId} cannot follow node ${chain[0]}: node ${chain[0]} streams from it (chain ${chain.join(' -> ')})`,
    );
  }
  // A subscriber that has seen a newer epoch than ours: this node is behind the cluster (a
  // deposed master is fenced by this at once).
  if (req.seenEpoch > wal.epoch) ctx.cluster.observe(req.seenEpoch);
  // Shown by replication-status: only a plain host:port (or nothing) from the network.
  const readAddress = req.readAddress === '' ? '' : parseAddress(req.readAddress);
  // Claims the id first (a second subscriber with it is refused while this one is checked),
  // but creates no slot: only startStream() or beginSnapshot() below, once the subscription
  // is accepted, give the follower one. A refusal leaves the registry as it was.
  const record = registry.attach(followerId, call.getPeer(), readAddress, req.durable);
  let dropped = false; // replication-admin drop-slot --force: this stream must end
  let wakeWriter: (() => void) | undefined;
  let wakeDrain: (() => void) | undefined;
  // Listening from the attach on: a drop while the position is checked ends the stream too.
  const offDrop = registry.onDrop((r) => {
    if (r !== record) return;
    dropped = true;
    wakeWriter?.();
    wakeDrain?.(); // even a follower that reads nothing (SIGSTOPped) is let go at once
    wal.wake();
  });
  let plan: StreamPlan;
  try {
    plan = await planStream(wal, { fromSeq, historyId: req.historyId, prevChecksum: req.prevChecksum, epochs: historyFromWire(req.epochs ?? []), seenEpoch: req.seenEpoch });
    if (dropped) throw slotDropped(followerId);
  } catch (err) {
    offDrop();
    ctx.metrics.subscriptions.inc({ result: 'refused' });
    registry.detach(record, err);
    throw err;
  }
  ctx.metrics.subscriptions.inc({ result: 'accepted' });
  ctx.metrics.initFollower(followerId);
  const streamedEntries = ctx.metrics.streamedEntries.labels(String(followerId));
  const streamedBytes = ctx.metrics.streamedBytes.labels(String(followerId));
  const flog = log.child({ followerId, peer: record.address });
  let failure: unknown;
  let cancelled = false;
  const onCancel = () => {
    cancelled = true;
    wakeWriter?.();
    wal.wake(); // a stream parked in waitForAppend notices at once
  };
  call.on('cancelled', onCancel);
  const live = () => !cancelled && !dropped && !ctx.isClosing();
  let unsent = 0; // Invariant: the payload bytes of messages whose write callback has not run yet.
  const send = async (msg: SubscribeResponseOut, bytes = 0): Promise<boolean> => {
    unsent += bytes;
    const written = call.write(msg, () => {
      unsent -= bytes;
      wakeWriter?.();
    });
    // Backpressure: never queue more until the transport has taken what we gave it.
    if (!written && live()) await drainedOrCancelled(call, (wake) => (wakeDrain = wake));
    // grpc-js skips write callbacks once a call is cancelled: onCancel wakes this wait too.
    while (unsent > MAX_UNSENT_BYTES && live()) await new Promise<void>((resolve) => (wakeWriter = resolve));
    return live();
  };
  try {
    let next = fromSeq;
    let prevChecksum = req.prevChecksum;
    // The stream serves one epoch history: if it changes (this node adopted a newer one, or
    // was promoted), the stream ends and the follower subscribes again to learn it.
    const epoch = wal.epoch;
    const start = {
      historyId: wal.historyId,
      epoch,
      masterLastSeq: seqToWire(wal.lastSeq),
      epochs: historyToWire(wal.epochs),
      chain,
      masterAddress: ctx.masterAddress(),
    };
    if (plan.mode === 'snapshot') {
      const snapshot = await store.snapshot();
      try {
        if (dropped) throw slotDropped(followerId);
        registry.beginSnapshot(record, snapshot.seq, snapshot.approxBytes);
        ctx.metrics.snapshotsSent.inc();
        // A new follower (from seq 1) always starts with a snapshot: routine, not a warning.
        flog[fromSeq === 1n ? 'info' : 'warn']({ reason: plan.reason, snapshotSeq: snapshot.seq.toString() }, 'sending a snapshot');
        const fork = plan.forkSeq !== undefined ? { diverged: true, forkSeq: seqToWire(plan.forkSeq) } : {};
        await send({ start: { ...start, ...fork, fromSeq: seqToWire(fromSeq), snapshot: snapshotInfo(snapshot), reason: plan.reason } });
        // Chunks come encoded (EncodedResponse): the stream's serializer passes them through.
        const { keys, digest } = await streamSnapshot(
          snapshot,
          (chunk) => send(chunk, chunk.payloadBytes),
          flog,
          (total) => send({ snapshotSize: { keys: total.toString() } }),
          (pairs, bytes) => {
            if (live()) registry.recordSnapshotSent(record, pairs, bytes);
          },
        );
        if (live() && (await send({ snapshotEnd: { keys: keys.toString(), digest } }))) {
          registry.endSnapshot(record);
          flog.info({ keys: keys.toString(), snapshotSeq: snapshot.seq.toString() }, 'snapshot sent; streaming the log after it');
        }
      } finally {
        await snapshot.close();
      }
      next = snapshot.seq + 1n;
      prevChecksum = snapshot.checksum;
    } else {
      if (dropped) throw slotDropped(followerId);
      registry.startStream(record, fromSeq, wal.lastSeq);
      flog.info({ fromSeq: fromSeq.toString(), lastSeq: wal.lastSeq.toString(), durable: req.durable }, 'follower subscribed');
      await send({ start: { ...start, fromSeq: seqToWire(fromSeq) } });
    }
    let lastSendMs = Date.now();
    while (live()) {
      if (wal.epoch !== epoch) throw epochChanged(epoch, wal.epoch);
      if (next <= wal.lastSeq) {
        const cached = wal.readCached(next, MAX_ENTRIES_PER_MESSAGE, MAX_BYTES_PER_MESSAGE);
        const entries = cached ?? (await wal.read(next, MAX_ENTRIES_PER_MESSAGE, MAX_BYTES_PER_MESSAGE));
        let bytes = 0;
        if (cached && entrySeq(cached[0]) === next) {
          // Sealed in memory by this process's committer, chained from the entry before:
          // checking again would only cost a CRC per entry per follower.
          for (const e of entries) bytes += e.length;
          prevChecksum = entryChecksum(entries[entries.length - 1]);
        } else {
          // Read back from the store: never serve past a bad entry, each must chain from the one before.
          let seq = next;
          for (const e of entries) {
            if (!chainsFrom(e, prevChecksum)) throw corruptEntry(seq);
            seq++;
            prevChecksum = entryChecksum(e);
            bytes += e.length;
          }
        }
        streamedEntries.inc(entries.length);
        streamedBytes.inc(bytes);
        next += BigInt(entries.length);
        registry.recordSent(record, next - 1n, bytes);
        // Encoded now, before any await: entries from the tail are views valid only until
        // the next commit (the stream's serializer passes an EncodedResponse through).
        const encoded = new EncodedResponse(encodeEntryBatchResponse(entries, wal.lastSeq, epoch), bytes);
        await send(encoded, bytes);
      } else {
        // Caught up: everything committed so far has been sent at least once.
        registry.recordCaughtUp(record);
        // Park until the next commit, or send a heartbeat once idle long enough.
        const idleLeftMs = ctx.heartbeatIntervalMs - (Date.now() - lastSendMs);
        if (idleLeftMs > 0) {
          await wal.waitForAppend(idleLeftMs);
          continue;
        }
        await send({ heartbeat: { masterLastSeq: seqToWire(wal.lastSeq), masterTimeMs: String(Date.now()), epoch } });
      }
      lastSendMs = Date.now();
    }
    if (dropped) throw slotDropped(followerId);
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    call.off('cancelled', onCancel);
    offDrop();
    registry.detach(record, failure);
    flog.info({ sentSeq: record.sentSeq.toString(), cancelled }, 'follower stream ended');
  }
  if (!cancelled) call.end();
}

/** Resolves once the transport drained, the call ended, or wakeBy's wake function is called. */
function drainedOrCancelled(call: SubscribeCall, wakeBy: (wake: () => void) => void): Promise<void> {
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
    wakeBy(done);
  });
}

function epochChanged(was: number, now: number): ReplicatorError {
  return new ReplicatorError(ErrorCode.EPOCH_CHANGED, `this node's epoch changed from ${was} to ${now}; subscribe again`);
}

function slotDropped(followerId: number): ReplicatorError {
  return new ReplicatorError(
    ErrorCode.SLOT_DROPPED,
    `the master dropped the replication slot of follower ${followerId} (replication-admin drop-slot --force); a follower that subscribes again gets a new slot`,
  );
}

/** The master's own stored entry at seq does not chain from its entry before: nothing at or past seq may be served. */
function corruptEntry(seq: bigint): ReplicatorError {
  return new ReplicatorError(ErrorCode.CORRUPT_ENTRY, `log entry ${seq} does not chain from the entry before it; refusing to serve past it`);
}
