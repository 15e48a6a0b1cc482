import { masterClient, callUnary } from '../../src/wire/rpc-client.js';
import { isReplicatorError } from '../../src/common/errors.js';
import type { MasterClient } from '../../src/wire/generated/levelreplicator/v1/Master.js';
import type { WriteRequest } from '../../src/wire/generated/levelreplicator/v1/WriteRequest.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';
import { MasterTracker, type MasterLocator } from './master-tracker.js';

export interface AckedWrite {
  key: string;
  value: string;
  seq: bigint;
  /** The epoch the answer named: the write is committed in that epoch's history at seq. */
  epoch: number;
  /** The node that answered (its address), and when the answer arrived (Date.now(), ms): who acknowledged what, when. */
  address?: string;
  at?: number;
}

/** Per writer: a key overwritten by every request, so lost or reordered updates show. */
export interface CounterKey {
  key: string;
  /** Value of the newest acknowledged request (-1: none yet) and the seq it got. */
  lastAcked: number;
  lastAckedSeq: bigint;
  /** Value of the newest request sent, acknowledged or not. */
  lastAttempted: number;
  /** Every acknowledged value: none of them may ever be rolled back. */
  ackedValues: Set<number>;
}

export interface LoadOptions {
  writers: number;
  batch: number;
  prefix: string;
  /** Deadline of each write call (default 5 s). */
  timeoutMs?: number;
  /**
   * Each request asks for this many followers to have durably applied it before the
   * answer (WriteRequest.ack); a request then counts as acknowledged only when the answer
   * says REPLICATED (REPLICATION_TIMEOUT: committed on the master, but not acknowledged).
   * Unset: the master's own policy, and any answer acknowledges.
   */
  ackFollowers?: number;
  /** The policy's wait for those followers (0: the master's default). */
  ackTimeoutMs?: number;
}

/** Where the writes go: one fixed address, or the current master of a cluster whose master moves. */
export type WriteTarget = string | MasterLocator;

/** Pause after a failed write, and while no node answers as master. */
const RETRY_MS = 20;
const NO_MASTER_RETRY_MS = 50;

/**
 * Concurrent writers against the master, each on its own channel. Every write has a
 * unique key and is sent once, so the oracle is exact: each acknowledged (key, value) must
 * be present. Failures (master killed, unavailable, deadline, refused) are recorded, never
 * retried as the same write: a failed write is indeterminate (it may have committed before
 * the failure), so its keys may or may not be present — but only with the value that was
 * sent. Each request also overwrites the writer's counter key with the request's number,
 * as its last write (highest seq of the request).
 *
 * With a MasterLocator the writers follow the master across promotions (MasterTracker):
 * each request goes to the master as last known, carries the newest epoch known, and a
 * failure sends the next request where the refusal pointed or to a fresh lookup.
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
  /** The first message of each error code, for the report. */
  readonly errorSamples = new Map<string, string>();
  /** Set when the writers follow a moving master. */
  readonly tracker: MasterTracker | undefined;
  private readonly fixed: string | undefined;
  private stopped = false;
  private running: Promise<void>[] = [];

  constructor(
    target: WriteTarget,
    readonly opts: LoadOptions,
  ) {
    if (typeof target === 'string') this.fixed = target;
    else this.tracker = new MasterTracker(target);
  }

  start(): void {
    for (let w = 0; w < this.opts.writers; w++) {
      this.counters.push({ key: `${this.opts.prefix}-w${w}-counter`, lastAcked: -1, lastAckedSeq: 0n, lastAttempted: -1, ackedValues: new Set() });
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

  private request(writes: { key: string; value: string }[]): WriteRequest {
    const req: WriteRequest = { writes: writes.map((p) => ({ mutations: [{ kind: 'PUT', key: Buffer.from(p.key), value: Buffer.from(p.value) }] })) };
    if (this.opts.ackFollowers !== undefined) req.ack = { followers: this.opts.ackFollowers, timeoutMs: this.opts.ackTimeoutMs ?? 0 };
    // Epoch 1 fences nobody; leaving it out keeps requests as they were before promotions.
    const epoch = this.tracker?.epoch ?? 0;
    if (epoch > 1) req.epoch = epoch;
    return req;
  }

  private fail(code: string, batch: { key: string; value: string }[], message = ''): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    if (!this.errorSamples.has(code)) this.errorSamples.set(code, message);
    this.failed += batch.length;
    if (code === 'DEADLINE_EXCEEDED') this.timedOut += batch.length;
    for (const p of batch) this.unacked.set(p.key, p.value);
  }

  private async writer(w: number): Promise<void> {
    const clients = new Map<string, MasterClient>();
    const clientFor = (address: string): MasterClient => {
      let c = clients.get(address);
      if (!c) clients.set(address, (c = masterClient(address)));
      return c;
    };
    const counter = this.counters[w];
    let n = 0;
    try {
      for (let request = 0; !this.stopped; ) {
        const address = this.fixed ?? (await this.tracker!.current());
        if (address === undefined) {
          await new Promise((r) => setTimeout(r, NO_MASTER_RETRY_MS)); // nothing sent
          continue;
        }
        const batch: { key: string; value: string }[] = [];
        for (let i = 0; i < this.opts.batch; i++, n++) {
          const key = `${this.opts.prefix}-w${w}-${String(n).padStart(8, '0')}`;
          batch.push({ key, value: `value of ${key}` });
        }
        const writes = [...batch, { key: counter.key, value: String(request) }];
        counter.lastAttempted = request;
        try {
          const client = clientFor(address);
          const res = await callUnary<WriteResponse__Output>((o, cb) => client.Write(this.request(writes), o, cb), this.opts.timeoutMs ?? 5_000, { role: 'master', address });
          this.tracker?.learnEpoch(res.epoch);
          if (this.opts.ackFollowers !== undefined && res.ackStatus !== 'REPLICATED') {
            // Committed on the master, not on the followers asked for: not acknowledged.
            this.fail(res.ackStatus, batch);
          } else {
            let seq = BigInt(res.firstSeq);
            const at = Date.now();
            for (const p of batch) this.acked.push({ ...p, seq: seq++, epoch: res.epoch, address, at });
            counter.lastAcked = request;
            counter.lastAckedSeq = seq;
            counter.ackedValues.add(request);
          }
        } catch (err) {
          this.fail(isReplicatorError(err) ? err.code : 'UNKNOWN', batch, (err as Error).message);
          this.tracker?.failed(address, isReplicatorError(err) ? err : undefined);
          await new Promise((r) => setTimeout(r, RETRY_MS)); // the master may be restarting
        }
        request++;
      }
    } finally {
      for (const c of clients.values()) c.close();
    }
  }
}
