import { isReplicatorError } from '../../src/common/errors.js';
import { callUnary, masterClient } from '../../src/wire/rpc-client.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';

/** One write's answer as the client saw it, with when it arrived (performance.now(), ms). */
export interface TimedAnswer {
  key: string;
  value: string;
  sentAt: number;
  at: number;
  /** Acknowledged: answered without error and REPLICATED (the writes ask for followers). */
  acked: boolean;
  /** The error code, or the ackStatus of an answer that is not an acknowledgement. */
  code?: string;
  seq?: bigint;
  epoch?: number;
}

/** How many answers of each kind ("ACK", or the code), for a report: "ACK 50, NO_LEASE 3". */
export function answerCodes(answers: readonly TimedAnswer[]): string {
  const n = new Map<string, number>();
  for (const a of answers) {
    const k = a.acked ? 'ACK' : a.code!;
    n.set(k, (n.get(k) ?? 0) + 1);
  }
  return [...n].map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
}

/** Pause between writes, so a failing address is not hammered; short against the TTLs measured. */
const PAUSE_MS = 20;

/**
 * A client that keeps writing to one address and nowhere else (no lookup, no redirect),
 * one write at a time, each with a unique key, asking for `ackFollowers` followers: the
 * ledger of what that one node answered and when. It is what a client stuck on an old
 * master's address sees, so it shows whether that node acknowledged anything too late.
 */
export class TimedWriter {
  readonly answers: TimedAnswer[] = [];
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    readonly address: string,
    readonly opts: { prefix: string; ackFollowers: number; timeoutMs?: number },
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  get acked(): TimedAnswer[] {
    return this.answers.filter((a) => a.acked);
  }

  /** The first answer after `since` (performance.now() ms) that matches. */
  firstAfter(since: number, match: (a: TimedAnswer) => boolean): TimedAnswer | undefined {
    return this.answers.find((a) => a.at >= since && match(a));
  }

  private async loop(): Promise<void> {
    const client = masterClient(this.address);
    try {
      for (let n = 0; !this.stopped; n++) {
        const key = `${this.opts.prefix}-${String(n).padStart(8, '0')}`;
        const value = `value of ${key}`;
        const sentAt = performance.now();
        try {
          const res = await callUnary<WriteResponse__Output>(
            (o, cb) =>
              client.Write({ writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from(key), value: Buffer.from(value) }] }], ack: { followers: this.opts.ackFollowers, timeoutMs: 0 } }, o, cb),
            this.opts.timeoutMs ?? 3_000,
            { role: 'master', address: this.address, write: true },
          );
          const acked = res.ackStatus === 'REPLICATED';
          this.answers.push({ key, value, sentAt, at: performance.now(), acked, code: acked ? undefined : res.ackStatus, seq: BigInt(res.firstSeq), epoch: res.epoch });
        } catch (err) {
          this.answers.push({ key, value, sentAt, at: performance.now(), acked: false, code: isReplicatorError(err) ? err.code : 'UNKNOWN' });
        }
        await new Promise((r) => setTimeout(r, PAUSE_MS));
      }
    } finally {
      client.close();
    }
  }
}
