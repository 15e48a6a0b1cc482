import type * as grpc from '@grpc/grpc-js';
import { Backoff } from '../common/backoff.js';
import { ErrorCode, fromServiceError, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { MasterClient } from '../common/generated/levelreplicator/v1/Master.js';
import type { SubscribeResponse__Output } from '../common/generated/levelreplicator/v1/SubscribeResponse.js';
import type { Logger } from '../common/logger.js';
import { seqToWire } from '../common/seq.js';
import type { Store } from '../common/store.js';
import { AckReporter } from './ack-reporter.js';
import type { Applier } from './applier.js';
import { Progress } from './progress.js';
import { runStreamSession } from './stream-session.js';

export type FollowerState = 'connecting' | 'snapshot' | 'catching-up' | 'streaming' | 'disconnected' | 'stopped';

export interface SubscriberOptions {
  followerId: number;
  masterAddress: string;
  readAddress: string;
  heartbeatTimeoutMs: number;
  progressIntervalMs: number;
  log: Logger;
}

/**
 * Keeps a follower subscribed: connect, stream, apply, and on any failure reconnect
 * forever with capped, jittered backoff from appliedSeq + 1. State changes are logged
 * once; repeated failures of the same kind are logged at debug level only.
 */
export class Subscriber {
  state: FollowerState = 'disconnected';
  masterLastSeq = 0n;
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
    private readonly db: Store,
    private readonly applier: Applier,
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
    this.progress.finish();
    this.state = 'stopped';
  }

  private setState(state: FollowerState, details: Record<string, unknown> = {}): void {
    const was = this.state;
    if (state === was) return;
    this.state = state;
    const { log } = this.opts;
    if (state === 'snapshot') log.warn(details, 'master is sending a snapshot');
    else if (state === 'streaming' && was !== 'catching-up') log.info(details, 'connected to master; streaming');
    else if (state === 'catching-up' && was !== 'streaming') log.info(details, 'connected to master; catching up');
    else if (state === 'disconnected') log.warn(details, 'disconnected from master; reconnecting with backoff');
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
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
    const summary = `${e.code}: ${e.message}`;
    // Log each distinct failure once; identical repeats (a master that stays down) at debug.
    if (summary !== this.lastFailure) {
      const level = e.code === ErrorCode.MASTER_UNAVAILABLE || e.code === ErrorCode.DEADLINE_EXCEEDED ? 'warn' : 'error';
      this.opts.log[level]({ code: e.code, appliedSeq: this.applier.appliedSeq.toString() }, e.message);
      this.lastFailure = summary;
    } else {
      this.opts.log.debug({ code: e.code }, e.message);
    }
    if (this.state !== 'connecting') this.setState('disconnected');
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
    });
    this.call = call;
    try {
      await runStreamSession(call, {
        db: this.db,
        applier,
        fromSeq,
        heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
        progress: this.progress,
        log: opts.log,
        events: {
          onStart: (mode, details) => {
            this.backoff.reset();
            this.lastFailure = '';
            this.setState(mode === 'snapshot' ? 'snapshot' : this.caughtUpState(), details);
            this.acks.report(applier.appliedSeq, true);
          },
          onApplied: (appliedSeq) => {
            this.acks.report(appliedSeq);
            this.setState(this.caughtUpState());
          },
          onHeartbeat: () => this.acks.report(applier.appliedSeq, true),
          onMasterLastSeq: (seq) => (this.masterLastSeq = seq),
        },
      });
    } finally {
      if (this.call === call) this.call = undefined;
    }
  }

  private caughtUpState(): FollowerState {
    return this.applier.appliedSeq >= this.masterLastSeq ? 'streaming' : 'catching-up';
  }
}
