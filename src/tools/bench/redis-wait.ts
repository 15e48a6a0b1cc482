import net from 'node:net';
import path from 'node:path';
import { PACE_TICK_MS } from './load.js';
import { RedisServer } from './redis.js';
import { connectSocket, RespReplyParser } from './resp.js';
import { quantileSorted } from './stats.js';
import type { Workload } from './workload.js';

/**
 * Redis's counterpart of the lag rows (row 6), on the same machine at the same rates:
 * every PACE_TICK_MS the SETs that have come due go to the master on one connection,
 * pipelined with `WAIT 1 0`, which Redis answers once the replica has acknowledged them.
 * Each SET's time is its tick's, from the send to WAIT's answer: a round trip (client ->
 * master -> replica -> master -> client), so an upper bound on Redis's one-way lag, which
 * row 6 measures for this project (commit on the master to apply on the follower). Both
 * Redis servers run appendonly everysec: the replica's apply is in memory, as a
 * `--no-sync` follower's is in LevelDB without an fsync.
 */
export interface RedisWaitFigures {
  rate: number;
  p50: number;
  p99: number;
  p999: number;
}

/**
 * Counts RESP replies to pipelined ticks: tick i expects `sets + 1` replies (+OK per SET,
 * then WAIT's integer); done() reports each tick as its last reply arrives. Replies come in
 * order on one connection, so the oldest tick is always the one being answered.
 */
export class TickReplies {
  private readonly ticks: { sentAt: number; left: number; sets: number }[] = [];
  private readonly parser = new RespReplyParser();

  constructor(private readonly done: (sets: number, ms: number) => void) {}

  sent(sets: number, at: number): void {
    this.ticks.push({ sentAt: at, left: sets + 1, sets });
  }

  received(data: Buffer, at: number): void {
    for (const reply of this.parser.push(data)) {
      if (reply instanceof Error) throw reply;
      const tick = this.ticks[0];
      if (!tick) throw new Error(`a Redis reply with no request waiting: ${reply}`);
      if (--tick.left === 0) {
        this.ticks.shift();
        this.done(tick.sets, at - tick.sentAt);
      }
    }
  }

  get pending(): number {
    return this.ticks.length;
  }
}

export async function redisWaitLatency(dir: string, w: Workload, rates: readonly number[], seconds: number): Promise<RedisWaitFigures[]> {
  const master = await RedisServer.start(path.join(dir, 'master'));
  const replica = await RedisServer.start(path.join(dir, 'replica')).catch(async (err: unknown) => {
    await master.stop();
    throw err;
  });
  let sock: net.Socket | undefined;
  try {
    await replica.cli('REPLICAOF', '127.0.0.1', String(master.port));
    await replica.waitSynced();
    // Start settled, as the nodes' lag rows do: Redis forks at start-up (the first AOF
    // rewrite) and for the replica's sync, and a WAIT during a fork can take 100s of ms.
    await master.waitIdle();
    await replica.waitIdle();
    sock = await connectSocket(master.port);
    const out: RedisWaitFigures[] = [];
    let next = 0;
    for (const rate of rates) {
      out.push(await paced(sock, w, rate, seconds, next));
      next += Math.round(rate * seconds);
    }
    return out;
  } finally {
    sock?.destroy();
    await replica.stop();
    await master.stop();
  }
}

/** One rate: the same pacing as paceWrites; the first tenth of the SETs is a warm-up and left out. */
async function paced(sock: net.Socket, w: Workload, rate: number, seconds: number, first: number): Promise<RedisWaitFigures> {
  const total = Math.round(rate * seconds);
  const times: number[] = [];
  let answered = 0;
  let failure: unknown;
  const replies = new TickReplies((sets, ms) => {
    for (let i = 0; i < sets; i++, answered++) if (answered >= total / 10) times.push(ms);
  });
  const onData = (d: Buffer) => {
    try {
      replies.received(d, performance.now());
    } catch (err) {
      failure ??= err;
    }
  };
  sock.on('data', onData);
  const head = Buffer.from('*3\r\n$3\r\nSET\r\n$16\r\n');
  const mid = Buffer.from(`\r\n$${w.valueBytes}\r\n`);
  const crlf = Buffer.from('\r\n');
  const wait = Buffer.from('*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n');
  try {
    const started = performance.now();
    let sent = 0;
    while (sent < total && failure === undefined) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate)) - sent;
      if (due > 0) {
        const parts: Buffer[] = [];
        for (let i = first + sent; i < first + sent + due; i++) parts.push(head, w.key(i), mid, w.value(i), crlf);
        parts.push(wait);
        replies.sent(due, performance.now());
        sock.write(Buffer.concat(parts));
        sent += due;
      }
      await new Promise((r) => setTimeout(r, PACE_TICK_MS));
    }
    const deadline = Date.now() + 30_000;
    while (replies.pending > 0 && failure === undefined) {
      if (Date.now() > deadline) throw new Error('Redis did not answer every WAIT within 30 s');
      await new Promise((r) => setTimeout(r, PACE_TICK_MS));
    }
    if (failure !== undefined) throw failure;
  } finally {
    sock.off('data', onData);
  }
  const sorted = Float64Array.from(times).sort();
  return { rate, p50: quantileSorted(sorted, 0.5), p99: quantileSorted(sorted, 0.99), p999: quantileSorted(sorted, 0.999) };
}
