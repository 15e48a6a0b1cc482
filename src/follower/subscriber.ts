import type * as grpc from '@grpc/grpc-js';
import { Backoff } from '../common/backoff.js';
import { ErrorCode, fromServiceError, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { MasterClient } from '../common/generated/levelreplicator/v1/Master.js';
import type { SubscribeResponse__Output } from '../common/generated/levelreplicator/v1/SubscribeResponse.js';
import type { Logger } from '../common/logger.js';
import { seqFromWire, seqToWire } from '../common/seq.js';
import { AckReporter } from './ack-reporter.js';
import type { Applier } from './applier.js';

/** Pause the stream (HTTP/2 flow control then holds the master back) above this many queued entries. */
const PAUSE_ABOVE_ENTRIES = 20_000;
const RESUME_BELOW_ENTRIES = 5_000;
/** Entries applied per LevelDB batch. */
const MAX_APPLY_ENTRIES = 10_000;

export type FollowerState = 'connecting' | 'streaming' | 'disconnected' | 'stopped';

export interface SubscriberOptions {
  followerId: number;
  masterAddress: string;
  readAddress: string;
  heartbeatTimeoutMs: number;
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
  private lastFailure = '';
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: MasterClient,
    private readonly applier: Applier,
    private readonly opts: SubscriberOptions,
  ) {
    this.acks = new AckReporter(client, opts.followerId, opts.log);
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.call?.cancel();
    this.wakeSleep?.();
    await this.loop;
    this.setState('stopped');
  }

  private setState(state: FollowerState, details: Record<string, unknown> = {}): void {
    if (state === this.state) return;
    this.state = state;
    const { log } = this.opts;
    if (state === 'streaming') log.info(details, 'connected to master; streaming');
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
    const wasStreaming = this.state === 'streaming' || this.state === 'connecting';
    // Log each distinct failure once at warn; identical repeats (a master that stays down) at debug.
    if (summary !== this.lastFailure) {
      const level = e.code === ErrorCode.MASTER_UNAVAILABLE || e.code === ErrorCode.DEADLINE_EXCEEDED ? 'warn' : 'error';
      this.opts.log[level]({ code: e.code, appliedSeq: this.applier.appliedSeq.toString() }, e.message);
      this.lastFailure = summary;
    } else {
      this.opts.log.debug({ code: e.code }, e.message);
    }
    if (wasStreaming) this.setState('disconnected');
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
  private streamOnce(): Promise<void> {
    const { applier, opts } = this;
    const fromSeq = applier.appliedSeq + 1n;
    this.state = this.state === 'disconnected' ? 'disconnected' : 'connecting';
    const call = this.client.Subscribe({
      followerId: opts.followerId,
      fromSeq: seqToWire(fromSeq),
      historyId: applier.historyId,
      prevChecksum: applier.appliedChecksum,
      readAddress: opts.readAddress,
    });
    this.call = call;

    return new Promise<void>((resolve, reject) => {
      const queue: Buffer[] = [];
      let historyId: Buffer | undefined;
      let applying = false;
      let paused = false;
      let failure: unknown;
      let ended = false;
      let watchdog: NodeJS.Timeout | undefined;

      const fail = (err: unknown) => {
        failure ??= err;
        call.cancel();
      };
      const armWatchdog = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(
          () => fail(new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `no message from the master for ${opts.heartbeatTimeoutMs} ms`)),
          opts.heartbeatTimeoutMs,
        );
      };
      const finish = () => {
        if (!ended || applying) return;
        clearTimeout(watchdog);
        if (this.call === call) this.call = undefined;
        if (failure) reject(failure);
        else resolve();
      };
      const applyLoop = async () => {
        if (applying) return;
        applying = true;
        try {
          while (queue.length > 0 && !failure) {
            const batch = queue.splice(0, MAX_APPLY_ENTRIES);
            await applier.apply(batch, historyId!);
            this.acks.report(applier.appliedSeq);
            if (paused && queue.length < RESUME_BELOW_ENTRIES) {
              paused = false;
              call.resume();
            }
          }
        } catch (err) {
          queue.length = 0;
          fail(err);
        } finally {
          applying = false;
          finish();
        }
      };

      armWatchdog();
      call.on('data', (msg: SubscribeResponse__Output) => {
        armWatchdog();
        if (msg.start) {
          if (seqFromWire(msg.start.fromSeq) !== fromSeq) {
            fail(new ReplicatorError(ErrorCode.SEQ_GAP, `master offered to stream from seq ${msg.start.fromSeq}, we asked for ${fromSeq}`));
            return;
          }
          historyId = msg.start.historyId;
          this.masterLastSeq = seqFromWire(msg.start.masterLastSeq);
          this.backoff.reset();
          this.lastFailure = '';
          this.setState('streaming', { fromSeq: fromSeq.toString(), masterLastSeq: this.masterLastSeq.toString() });
          this.acks.report(applier.appliedSeq, true);
        } else if (msg.entries) {
          if (!historyId) return fail(new ReplicatorError(ErrorCode.INTERNAL, 'entries before the stream start'));
          this.masterLastSeq = seqFromWire(msg.entries.masterLastSeq);
          for (const e of msg.entries.entries) queue.push(e);
          if (!paused && queue.length > PAUSE_ABOVE_ENTRIES) {
            paused = true;
            call.pause();
          }
          void applyLoop();
        } else if (msg.heartbeat) {
          this.masterLastSeq = seqFromWire(msg.heartbeat.masterLastSeq);
          this.acks.report(applier.appliedSeq, true);
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
}
