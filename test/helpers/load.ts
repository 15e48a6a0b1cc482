import { masterClient, callUnary } from '../../src/wire/rpc-client.js';
import { isReplicatorError } from '../../src/common/errors.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';

export interface AckedWrite {
  key: string;
  value: string;
  seq: bigint;
}

/** Per writer: a key overwritten by every request, so lost or reordered updates show. */
export interface CounterKey {
  key: string;
  /** Value of the newest acknowledged request (-1: none yet) and the seq it got. */
  lastAcked: number;
  lastAckedSeq: bigint;
  /** Value of the newest request sent, acknowledged or not. */
  lastAttempted: number;
}

/**
 * Concurrent writers against the master, each on its own channel. Every write has a
 * unique key, so the oracle is exact: each acknowledged (key, value) must be present.
 * Failures (master killed, unavailable, deadline) are recorded, never retried as the same
 * write: a failed write is indeterminate (it may have committed before the failure), so
 * its keys may or may not be present — but only with the value that was sent.
 * Each request also overwrites the writer's counter key with the request's number, as
 * its last write (highest seq of the request).
 */
export class LoadGenerator {
  readonly acked: AckedWrite[] = [];
  /** Keys (and values) of writes that failed or timed out: may or may not be committed. */
  readonly unacked = new Map<string, string>();
  readonly counters: CounterKey[] = [];
  /** Failed write count, and per error code. */
  failed = 0;
  timedOut = 0;
  readonly errors = new Map<string, number>();
  private stopped = false;
  private running: Promise<void>[] = [];

  constructor(
    private readonly address: string,
    readonly opts: { writers: number; batch: number; prefix: string; timeoutMs?: number },
  ) {}

  start(): void {
    for (let w = 0; w < this.opts.writers; w++) {
      this.counters.push({ key: `${this.opts.prefix}-w${w}-counter`, lastAcked: -1, lastAckedSeq: 0n, lastAttempted: -1 });
      this.running.push(this.writer(w));
    }
  }

  /** Writes until `target` writes are acknowledged (or stop() is called). */
  async untilAcked(target: number): Promise<void> {
    while (this.acked.length < target && !this.stopped) await new Promise((r) => setTimeout(r, 10));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  private async writer(w: number): Promise<void> {
    const client = masterClient(this.address);
    const counter = this.counters[w];
    let n = 0;
    try {
      for (let request = 0; !this.stopped; request++) {
        const batch: { key: string; value: string }[] = [];
        for (let i = 0; i < this.opts.batch; i++, n++) {
          const key = `${this.opts.prefix}-w${w}-${String(n).padStart(8, '0')}`;
          batch.push({ key, value: `value of ${key}` });
        }
        const writes = [...batch, { key: counter.key, value: String(request) }];
        counter.lastAttempted = request;
        try {
          const res = await callUnary<WriteResponse__Output>(
            (o, cb) =>
              client.Write(
                { writes: writes.map((p) => ({ mutations: [{ kind: 'PUT', key: Buffer.from(p.key), value: Buffer.from(p.value) }] })) },
                o,
                cb,
              ),
            this.opts.timeoutMs ?? 5_000,
            { role: 'master', address: this.address },
          );
          let seq = BigInt(res.firstSeq);
          for (const p of batch) this.acked.push({ ...p, seq: seq++ });
          counter.lastAcked = request;
          counter.lastAckedSeq = seq;
        } catch (err) {
          const code = isReplicatorError(err) ? err.code : 'UNKNOWN';
          this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
          this.failed += batch.length;
          if (code === 'DEADLINE_EXCEEDED') this.timedOut += batch.length;
          for (const p of batch) this.unacked.set(p.key, p.value);
          await new Promise((r) => setTimeout(r, 20)); // the master may be restarting
        }
      }
    } finally {
      client.close();
    }
  }
}
