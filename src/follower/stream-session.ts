import type * as grpc from '@grpc/grpc-js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { KeyValue__Output } from '../wire/generated/levelreplicator/v1/KeyValue.js';
import type { SnapshotEnd__Output } from '../wire/generated/levelreplicator/v1/SnapshotEnd.js';
import type { SubscribeResponse__Output } from '../wire/generated/levelreplicator/v1/SubscribeResponse.js';
import type { Logger } from '../common/logger.js';
import { seqFromWire } from '../wire/seq.js';
import type { ReplicaStore, StagedEntries } from '../storage/interfaces.js';
import type { Progress } from './progress.js';
import { SnapshotReceiver } from './snapshot-receiver.js';
import type { StreamStart__Output } from '../wire/generated/levelreplicator/v1/StreamStart.js';
import { historyFromWire } from '../wire/epoch-wire.js';
import type { ClusterView } from '../common/cluster-view.js';

/** Pause the stream (HTTP/2 flow control then holds the master back) above this many queued entries/pairs. */
const PAUSE_ABOVE = 20_000;
const RESUME_BELOW = 5_000;
/** Entries applied per LevelDB batch. */
const MAX_APPLY_ENTRIES = 10_000;

type Item =
  | { kind: 'start'; start: StreamStart__Output }
  | { kind: 'entries'; entries: Buffer[] }
  | { kind: 'chunk'; pairs: KeyValue__Output[] }
  | { kind: 'snapshot-end'; end: SnapshotEnd__Output };

export interface SessionEvents {
  /** The master accepted the stream (log or snapshot). */
  onStart(mode: 'log' | 'snapshot', details: Record<string, unknown>): void;
  onApplied(appliedSeq: bigint): void;
  /** One batch of log entries was applied (for metrics). */
  onBatchApplied?(entries: number, bytes: number, seconds: number): void;
  onHeartbeat(): void;
  onMasterLastSeq(seq: bigint): void;
  /** The upstream accepted the stream: its chain (node ids from it up to the master) and the master it knows. */
  onUpstream?(chain: number[], masterAddress: string): void;
}

/**
 * One Subscribe stream, from the request to its end. Messages are queued and applied
 * strictly in order by one loop: snapshot chunks into the staging generation, then the
 * snapshot switch, then log entries (many per batch). Resolves when the stream ended
 * and everything received was applied; rejects with why it failed.
 */
export function runStreamSession(
  call: grpc.ClientReadableStream<SubscribeResponse__Output>,
  ctx: {
    applier: ReplicaStore;
    fromSeq: bigint;
    heartbeatTimeoutMs: number;
    progress: Progress;
    log: Logger;
    events: SessionEvents;
    /** Epochs and the master as this process knows them; the upstream is checked against them. */
    cluster?: ClusterView;
    /** This node's id: an upstream whose chain holds it would be following itself. */
    nodeId?: number;
    /** Writes this node's entries after forkSeq to a rollback file (durably) before a snapshot replaces them. */
    rollback?: (forkSeq: bigint, newEpoch: number) => Promise<void>;
  },
): Promise<void> {
  const { applier, events, log, progress } = ctx;
  return new Promise<void>((resolve, reject) => {
    const queue: Item[] = [];
    let queued = 0;
    let historyId: Buffer | undefined;
    let snapshot: SnapshotReceiver | undefined;
    let applying = false;
    let paused = false;
    let failure: unknown;
    let ended = false;
    let watchdog: NodeJS.Timeout | undefined;
    let masterLastSeq = 0n;
    let streamEpoch = 0;
    /** The upstream's epoch history, adopted once the snapshot it comes with is installed. */
    let pendingEpochs: ReturnType<typeof historyFromWire> | undefined;

    const fail = (err: unknown) => {
      failure ??= err;
      call.cancel();
    };
    const armWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(
        () => fail(new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `no message from the master for ${ctx.heartbeatTimeoutMs} ms`)),
        ctx.heartbeatTimeoutMs,
      );
    };
    const finish = () => {
      if (!ended || applying) return;
      clearTimeout(watchdog);
      // Whatever was in progress stops here: its bar must not stay on screen while we reconnect.
      progress.finish();
      if (snapshot) {
        // Interrupted: the staging generation is garbage; the live data is untouched.
        applier.clearGenerationLater(snapshot.gen, (err) => log.warn({ err: (err as Error).message }, 'could not clear an interrupted snapshot'));
      }
      if (failure) reject(failure);
      else resolve();
    };
    const push = (item: Item, weight: number) => {
      queue.push(item);
      queued += weight;
      if (!paused && queued > PAUSE_ABOVE) {
        paused = true;
        call.pause();
      }
      void applyLoop();
    };

    const resumeIfDrained = () => {
      if (paused && queued < RESUME_BELOW) {
        paused = false;
        call.resume();
      }
    };

    // The entries write in flight, if any. Invariant: at most one; the next batch is
    // verified and staged on the main thread meanwhile and committed after it.
    let inFlight: { done: Promise<void>; staged: StagedEntries } | undefined;
    const settleEntries = async (): Promise<void> => {
      const f = inFlight;
      if (!f) return;
      try {
        await f.done;
      } finally {
        if (inFlight === f) inFlight = undefined;
      }
    };

    const applyOne = async (): Promise<void> => {
      const head = queue[0];
      if (head.kind === 'start') {
        queue.shift();
        const start = head.start;
        const epochs = historyFromWire(start.epochs);
        if (start.diverged) {
          // Entries after the fork are this node's only copy of those writes: listed in a
          // durable rollback file before the snapshot may replace them (docs/roles.md).
          if (!ctx.rollback) throw new ReplicatorError(ErrorCode.INTERNAL, 'the upstream reports a fork but this node cannot write a rollback file');
          await ctx.rollback(seqFromWire(start.forkSeq), start.epoch);
        }
        // A log stream continues our history: adopt the upstream's epochs before any entry
        // of theirs is applied. With a snapshot, once it is installed (until then our data
        // is still our old history's).
        if (start.snapshot) pendingEpochs = epochs;
        else await applier.log.adoptEpochs(epochs);
        return;
      }
      if (head.kind === 'entries') {
        // Coalesce consecutive entry messages into one batch.
        const batch: Buffer[] = [];
        while (queue.length > 0 && queue[0].kind === 'entries' && batch.length < MAX_APPLY_ENTRIES) {
          batch.push(...(queue.shift() as Extract<Item, { kind: 'entries' }>).entries);
        }
        const started = process.hrtime.bigint();
        // With no write in flight, a failed one may have left the store to reopen (and the
        // position to re-read) first; with one in flight, stage after its end position.
        if (!inFlight) await applier.ensureWritable();
        const staged = await applier.stage(batch, historyId!, inFlight?.staged.to);
        const verifyNs = process.hrtime.bigint() - started;
        try {
          await settleEntries();
        } catch (err) {
          await applier.discard(staged);
          throw err;
        }
        const writeStarted = process.hrtime.bigint();
        const done = applier.commit(staged).then(() => {
          if (events.onBatchApplied) {
            let bytes = 0;
            for (const e of batch) bytes += e.length;
            // Verifying plus writing; not the wait for the previous batch's write.
            events.onBatchApplied(batch.length, bytes, Number(verifyNs + process.hrtime.bigint() - writeStarted) / 1e9);
          }
          queued -= batch.length;
          resumeIfDrained();
          events.onApplied(applier.appliedSeq);
          progress.applied(applier.appliedSeq, masterLastSeq);
        });
        done.catch(() => undefined); // surfaced by settleEntries
        inFlight = { done, staged };
        return;
      }
      // Snapshot items follow every entry before them, written.
      await settleEntries();
      queue.shift();
      if (!snapshot) throw new ReplicatorError(ErrorCode.INTERNAL, 'snapshot data outside a snapshot');
      await snapshot.begin();
      if (head.kind === 'chunk') {
        await snapshot.add(head.pairs);
        queued -= head.pairs.length;
        progress.snapshotProgress(snapshot.keys, snapshot.bytes);
        return;
      }
      const replaced = await snapshot.finish(head.end);
      // The bar ends (100%, then cleared) before the line saying so is logged.
      progress.snapshotInstalled(snapshot.keys, snapshot.bytes);
      log.info({ snapshotSeq: snapshot.seq.toString(), keys: snapshot.keys.toString(), bytes: snapshot.bytes }, 'snapshot installed; streaming the log after it');
      snapshot = undefined;
      if (pendingEpochs) {
        await applier.log.adoptEpochs(pendingEpochs);
        pendingEpochs = undefined;
      }
      applier.clearGenerationLater(replaced, (err) => log.warn({ err: (err as Error).message }, 'could not clear replaced data'));
      events.onApplied(applier.appliedSeq);
    };

    const applyLoop = async () => {
      if (applying) return;
      applying = true;
      try {
        while (!failure) {
          if (queue.length === 0) {
            // An entries batch or a snapshot chunk may still be being written: the loop is
            // not done until it is.
            if (inFlight) {
              await settleEntries();
              continue;
            }
            if (!snapshot?.writing) break;
            await snapshot.settle();
            continue;
          }
          await applyOne();
          resumeIfDrained();
        }
      } catch (err) {
        queue.length = 0;
        fail(err);
      } finally {
        // Invariant: no write is in flight once the loop stops, so finish() may clear an
        // interrupted snapshot's generation, and a new session starts from a settled position.
        await settleEntries().catch(() => undefined);
        await snapshot?.settle().catch(() => undefined);
        applying = false;
        finish();
      }
    };

    armWatchdog();
    call.on('data', (msg: SubscribeResponse__Output) => {
      armWatchdog();
      if (msg.start) {
        const start = msg.start;
        if (!start.snapshot && seqFromWire(start.fromSeq) !== ctx.fromSeq) {
          return fail(new ReplicatorError(ErrorCode.SEQ_GAP, `master offered to stream from seq ${start.fromSeq}, we asked for ${ctx.fromSeq}`));
        }
        const cluster = ctx.cluster;
        if (cluster && start.epoch > 0 && start.epoch < cluster.seenEpoch) {
          return fail(new ReplicatorError(ErrorCode.STALE_EPOCH, `the upstream is at epoch ${start.epoch}, this node has seen epoch ${cluster.seenEpoch}: refusing to follow it`));
        }
        if (ctx.nodeId !== undefined && start.chain.includes(ctx.nodeId)) {
          return fail(new ReplicatorError(ErrorCode.FOLLOW_LOOP, `the upstream streams from this node (chain ${start.chain.join(' -> ')}): refusing to follow it`));
        }
        if (start.epoch > 0) cluster?.observe(start.epoch, start.masterAddress);
        events.onUpstream?.(start.chain, start.masterAddress);
        streamEpoch = start.epoch;
        push({ kind: 'start', start }, 0);
        historyId = start.historyId;
        masterLastSeq = seqFromWire(start.masterLastSeq);
        events.onMasterLastSeq(masterLastSeq);
        if (start.snapshot) {
          snapshot = new SnapshotReceiver(applier, start.snapshot, start.historyId, start.epoch);
          progress.snapshotStarted();
          events.onStart('snapshot', { reason: start.reason, snapshotSeq: start.snapshot.seq, appliedSeq: applier.appliedSeq.toString() });
        } else {
          events.onStart('log', { fromSeq: ctx.fromSeq.toString(), masterLastSeq: start.masterLastSeq });
        }
      } else if (msg.entries) {
        if (!historyId) return fail(new ReplicatorError(ErrorCode.INTERNAL, 'entries before the stream start'));
        if (msg.entries.epoch && msg.entries.epoch !== streamEpoch) {
          return fail(new ReplicatorError(ErrorCode.EPOCH_CHANGED, `the upstream's epoch changed from ${streamEpoch} to ${msg.entries.epoch} within a stream`));
        }
        masterLastSeq = seqFromWire(msg.entries.masterLastSeq);
        events.onMasterLastSeq(masterLastSeq);
        push({ kind: 'entries', entries: msg.entries.entries }, msg.entries.entries.length);
      } else if (msg.snapshotChunk) {
        push({ kind: 'chunk', pairs: msg.snapshotChunk.pairs }, msg.snapshotChunk.pairs.length);
      } else if (msg.snapshotSize) {
        // For progress only (the count is verified by SnapshotEnd); not queued, so the
        // bar knows the total while the chunks before it are still being applied.
        if (!snapshot) return fail(new ReplicatorError(ErrorCode.INTERNAL, 'a snapshot size outside a snapshot'));
        progress.snapshotTotal(seqFromWire(msg.snapshotSize.keys));
      } else if (msg.snapshotEnd) {
        push({ kind: 'snapshot-end', end: msg.snapshotEnd }, 0);
      } else if (msg.heartbeat) {
        masterLastSeq = seqFromWire(msg.heartbeat.masterLastSeq);
        events.onMasterLastSeq(masterLastSeq);
        events.onHeartbeat();
      }
    });
    call.on('error', (err: grpc.ServiceError) => {
      // A cancel of ours surfaces here as CANCELLED; keep the reason we cancelled for.
      failure ??= err;
      ended = true;
      finish();
    });
    call.on('end', () => {
      ended = true;
      finish();
    });
  });
}
