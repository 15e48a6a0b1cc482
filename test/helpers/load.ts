import { masterClient, callUnary } from '../../src/common/rpc-client.js';
import type { WriteResponse__Output } from '../../src/common/generated/levelreplicator/v1/WriteResponse.js';

export interface AckedWrite {
  key: string;
  value: string;
  seq: bigint;
}

/**
 * Concurrent writers against the master, each on its own channel. Every write has a
 * unique key, so the oracle is exact: each acknowledged (key, value) must be present.
 * Failures (master killed, unavailable) are counted, never retried as the same write.
 */
export class LoadGenerator {
  readonly acked: AckedWrite[] = [];
  failed = 0;
  private stopped = false;
  private running: Promise<void>[] = [];

  constructor(
    private readonly address: string,
    private readonly opts: { writers: number; batch: number; prefix: string; timeoutMs?: number },
  ) {}

  start(): void {
    for (let w = 0; w < this.opts.writers; w++) this.running.push(this.writer(w));
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
    let n = 0;
    try {
      while (!this.stopped) {
        const batch: { key: string; value: string }[] = [];
        for (let i = 0; i < this.opts.batch; i++, n++) {
          const key = `${this.opts.prefix}-w${w}-${String(n).padStart(8, '0')}`;
          batch.push({ key, value: `value of ${key}` });
        }
        try {
          const res = await callUnary<WriteResponse__Output>(
            (o, cb) =>
              client.Write(
                { writes: batch.map((p) => ({ mutations: [{ kind: 'PUT', key: Buffer.from(p.key), value: Buffer.from(p.value) }] })) },
                o,
                cb,
              ),
            this.opts.timeoutMs ?? 5_000,
            { role: 'master', address: this.address },
          );
          let seq = BigInt(res.firstSeq);
          for (const p of batch) this.acked.push({ ...p, seq: seq++ });
        } catch {
          this.failed += batch.length;
          await new Promise((r) => setTimeout(r, 20)); // the master may be restarting
        }
      }
    } finally {
      client.close();
    }
  }
}
