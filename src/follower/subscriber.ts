import type * as grpc from '@grpc/grpc-js';
import { Backoff } from '../common/backoff.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { ReplicationState, type FollowerNodeState } from '../common/replication-state.js';
import { fromServiceError } from '../wire/grpc-status.js';
import type { MasterClient } from '../wire/generated/levelreplicator/v1/Master.js';
import type { SubscribeResponse__Output } from '../wire/generated/levelreplicator/v1/SubscribeResponse.js';
import type { Logger } from '../common/logger.js';
import { seqToWire } from '../wire/seq.js';
import type { ReplicaStore } from '../storage/interfaces.js';
import { AckReporter } from './ack-reporter.js';
import type { FollowerMetrics, ReplicationSource } from './metrics.js';
import { Progress } from './progress.js';
import { runStreamSession } from './stream-session.js';
import type { ClusterView } from '../common/cluster-view.js';
import { historyToWire } from '../wire/epoch-wire.js';
import { writeRollbackFile } from './rollback-file.js';

/** The time grpc-js appends to a connection error, e.g. ` (2026-01-02T03:04:05.678Z)`. */
const GRPC_TIMESTAMP = / ?\(\d{4}-\d\d-\d\dT[\d:.]+Z?\)/g;

const S = ReplicationState;

export interface SubscriberOptions {
  followerId: number;
  masterAddress: string;
  readAddress: string;
  heartbeatTimeoutMs: number;
  progressIntervalMs: number;
  /** The applier fsyncs each batch (--sync): tells the master our acks count as durable. */
  durable: boolean;
  metrics?: FollowerMetrics;
  log: Logger;
  /** Epochs and the master as the process knows them (shared across role changes). */
  cluster?: ClusterView;
  /** Where rollback files go (the data directory); without it a fork cannot be followed. */
  dataDir?: string;
}

/**
 * Keeps a follower subscribed: connect, stream, apply, and on any failure reconnect
 * forever with capped, jittered backoff from appliedSeq + 1. State changes are logged
 * once; repeated failures of the same kind are logged at debug level only.
 */
export class Subscriber implements ReplicationSource {
  private current: FollowerNodeState = S.DISCONNECTED;
  private currentSinceMs = Date.now();
  masterLastSeq = 0n;
  /** Node ids from the upstream up to the master, as the last stream started (StreamStart.chain). */
  upstreamChain: number[] = [];
  /** The master as the upstream named it when the last stream started; '' before any. */
  upstreamMasterAddress = '';
  /** Follower clock (ms) since when it has known it is behind the master; undefined while caught up. */
  private behindSinceMs: number | undefined;
  private call: grpc.ClientReadableStream<SubscribeResponse__Output> | undefined;
  private stopped = false;
  private wakeSleep: (() => void) | undefined;
  private readonly backoff = new Backoff();
  private readonly acks: AckReporter;
  private readonly progress: Progress;
  private lastFailure = '';
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: MasterClient,
    private readonly applier: ReplicaStore,
    private readonly opts: SubscriberOptions,
  ) {
    this.acks = new AckReporter(client, opts.followerId, opts.log);
    this.progress = new Progress(opts.log, opts.progressIntervalMs);
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.call?.cancel();
    this.wakeSleep?.();
    await this.loop;
    // The channel is closed after this: no Ack may start on it, not even one chained from
    // an Ack still in flight (the batch written last was reported just now).
    this.acks.stop();
    this.progress.finish();
    this.current = S.STOPPED;
  }

  /** The follower's replication state (lr_follower_state); only the subscriber changes it. */
  get state(): FollowerNodeState {
    return this.current;
  }

  /** Follower clock (epoch ms) of the last state change. */
  get stateSinceMs(): number {
    return this.currentSinceMs;
  }

  /** Why the last subscription failed (code: message); '' once the stream works again. */
  get lastError(): string {
    return this.lastFailure;
  }

  private setState(state: FollowerNodeState, details: Record<string, unknown> = {}): void {
    const was = this.current;
    if (state === was) return;
    this.current = state;
    this.currentSinceMs = Date.now();
    const { log } = this.opts;
    // A new follower (nothing applied) is always bootstrapped by a snapshot: routine, not a warning.
    if (state === S.SNAPSHOT) log[details.appliedSeq === '0' ? 'info' : 'warn'](details, 'master is sending a snapshot');
    else if (state === S.STREAMING && was !== S.CATCHING_UP) log.info(details, 'connected to master; streaming');
    else if (state === S.CATCHING_UP && was !== S.STREAMING) log.info(details, 'connected to master; catching up');
    else if (state === S.DISCONNECTED) log.warn(details, 'disconnected from master; reconnecting with backoff');
  }

  /**
   * How far behind the master we are in time: 0 when caught up; otherwise the time since
   * the newer of the commit time of the last applied entry (master clock) and the moment
   * we learned we were behind (our clock), so an idle follower receiving a new write does
   * not report the whole idle time as lag.
   */
  lagMs(now = Date.now()): number {
    if (this.behindSinceMs === undefined || this.applier.appliedSeq >= this.masterLastSeq) return 0;
    return Math.max(0, now - Math.max(this.behindSinceMs, this.applier.appliedCommitTimeMs));
  }

  private noteProgress(): void {
    if (this.applier.appliedSeq >= this.masterLastSeq) this.behindSinceMs = undefined;
    else this.behindSinceMs ??= Date.now();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      if (attempt++ > 0) this.opts.metrics?.reconnects.inc();
      try {
        // After a failed store write, reopen the store first; while that fails (the disk
        // is still full), back off without asking the master to stream anything.
        await this.applier.ensureWritable();
        await this.streamOnce();
        if (!this.stopped) this.noteFailure(new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, 'the master ended the stream'));
      } catch (err) {
        if (!this.stopped) this.noteFailure(err);
      }
      if (this.stopped) break;
      await this.sleep(this.backoff.next());
    }
  }

  private noteFailure(err: unknown): void {
    const e = isReplicatorError(err) ? err : fromServiceError(err, { role: 'master', address: this.opts.masterAddress });
    // grpc-js stamps its "Last error" with the time it happened: not part of what failed.
    const summary = `${e.code}: ${e.message.replace(GRPC_TIMESTAMP, '')}`;
    this.opts.metrics?.errors.inc({ code: e.code });
    // Log each distinct failure once; identical repeats (a master that stays down) at debug.
    if (summary !== this.lastFailure) {
      const level = e.code === ErrorCode.MASTER_UNAVAILABLE || e.code === ErrorCode.DEADLINE_EXCEEDED ? 'warn' : 'error';
      this.opts.log[level]({ code: e.code, appliedSeq: this.applier.appliedSeq.toString() }, e.message);
      this.lastFailure = summary;
    } else {
      this.opts.log.debug({ code: e.code }, e.message);
    }
    if (this.current !== S.CONNECTING) this.setState(S.DISCONNECTED);
  }

  /**
   * The stream works end to end: entries were applied, or the master, with nothing more
   * to send, sends heartbeats. Only then does the next failure retry quickly and get
   * logged again. A stream that connects but cannot apply (a full disk) keeps backing
   * off, and its repeated failure is logged once.
   */
  private healthy(): void {
    this.backoff.reset();
    this.lastFailure = '';
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** One subscription: resolves when the stream ends, rejects with why it failed. */
  private async streamOnce(): Promise<void> {
    const { applier, opts } = this;
    const fromSeq = applier.appliedSeq + 1n;
    const call = this.client.Subscribe({
      followerId: opts.followerId,
      fromSeq: seqToWire(fromSeq),
      historyId: applier.historyId,
      prevChecksum: applier.appliedChecksum,
      readAddress: opts.readAddress,
      durable: opts.durable,
      epochs: historyToWire(applier.log.epochs),
      seenEpoch: Math.max(opts.cluster?.seenEpoch ?? 0, applier.log.epoch),
    });
    this.call = call;
    try {
      await runStreamSession(call, {
        applier,
        fromSeq,
        heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
        progress: this.progress,
        log: opts.log,
        cluster: opts.cluster,
        nodeId: opts.followerId,
        rollback: opts.dataDir
          ? async (forkSeq, newEpoch) => {
              await writeRollbackFile(opts.dataDir!, applier.log, { forkSeq, lastSeq: applier.appliedSeq, newEpoch, upstream: opts.masterAddress }, opts.log);
            }
          : undefined,
        events: {
          onStart: (mode, details) => {
            if (mode === 'snapshot') opts.metrics?.snapshots.inc();
            this.setState(mode === 'snapshot' ? S.SNAPSHOT : this.caughtUpState(), details);
            this.reportAck(true);
          },
          onApplied: () => {
            this.healthy();
            this.noteProgress();
            this.setState(this.caughtUpState());
            this.reportAck(false);
          },
          onBatchApplied: (entries, bytes, seconds) => {
            const m = opts.metrics;
            if (!m) return;
            m.appliedEntries.inc(entries);
            m.appliedBytes.inc(bytes);
            m.applyDuration.observe(seconds);
          },
          onHeartbeat: () => {
            this.healthy();
            this.reportAck(true);
          },
          onUpstream: (chain, masterAddress) => {
            this.upstreamChain = [...chain];
            if (masterAddress) this.upstreamMasterAddress = masterAddress;
          },
          onMasterLastSeq: (seq) => {
            this.masterLastSeq = seq;
            this.noteProgress();
          },
        },
      });
    } finally {
      if (this.call === call) this.call = undefined;
    }
  }

  /**
   * Tells the master our applied seq. Never while a snapshot is being received: until it
   * is installed, our applied seq is the old data's, which may not even be the master's
   * history, and the master must not count it as holding anything of the snapshot.
   */
  private reportAck(force: boolean): void {
    if (this.current !== S.SNAPSHOT) this.acks.report(this.applier.appliedSeq, force);
  }

  private caughtUpState(): FollowerNodeState {
    return this.applier.appliedSeq >= this.masterLastSeq ? S.STREAMING : S.CATCHING_UP;
  }
}
