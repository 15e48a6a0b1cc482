import net from 'node:net';

/** Above this many bytes held in one direction the source socket stops being read. */
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * One direction of one proxied connection: reads `src`, writes `dst`, in order, after
 * the proxy's current delay and no faster than its rate limit. While held (blackhole) it neither reads nor writes, so the
 * sender's TCP window fills exactly as with a dropped route: nothing is lost or
 * reordered, nothing is closed, no RST — bytes just stop arriving.
 */
class Pump {
  private readonly queue: { chunk: Buffer; due: number }[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private held = false;
  private srcEnded = false;
  /** When the link is free again under the rate limit (ms since the epoch). */
  private freeAt = 0;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly shape: () => { delayMs: number; bytesPerSecond: number },
  ) {
    src.on('data', (chunk: Buffer) => {
      const { delayMs, bytesPerSecond } = this.shape();
      // Delivered once it would have crossed the link: after the delay, and after the
      // chunks before it plus its own transmission time under the rate limit.
      const start = Math.max(Date.now() + delayMs, this.freeAt);
      const due = bytesPerSecond > 0 ? start + (chunk.length * 1000) / bytesPerSecond : start;
      this.freeAt = bytesPerSecond > 0 ? due : 0;
      this.queue.push({ chunk, due });
      this.queuedBytes += chunk.length;
      if (this.queuedBytes > HIGH_WATER_BYTES) src.pause();
      this.flush();
    });
    src.on('end', () => {
      this.srcEnded = true;
      this.flush();
    });
    dst.on('drain', () => {
      this.waitingDrain = false;
      this.flush();
    });
  }

  hold(): void {
    this.held = true;
    this.src.pause();
    clearTimeout(this.timer);
  }

  release(): void {
    this.held = false;
    this.flush();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private flush(): void {
    if (this.held || this.waitingDrain || this.dst.destroyed) return;
    clearTimeout(this.timer);
    while (this.queue.length > 0) {
      const wait = this.queue[0].due - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => this.flush(), wait);
        return;
      }
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      if (!this.dst.write(chunk)) {
        this.waitingDrain = true;
        break;
      }
    }
    if (this.queue.length === 0 && this.srcEnded) this.dst.end();
    else if (this.queuedBytes < HIGH_WATER_BYTES / 2 && !this.src.destroyed) this.src.resume();
  }
}

interface Link {
  client: net.Socket;
  upstream?: net.Socket;
  pumps: Pump[];
}

export type ProxyMode = 'forward' | 'blackhole';

/**
 * A TCP proxy between followers and the master, under test control. Faults are real
 * socket faults seen by the unmodified processes:
 * - cut(): every open connection is reset (RST) on both sides; new ones are forwarded.
 * - blackhole(): open connections stay open but stop moving bytes in both directions,
 *   and new connections are accepted but never connected upstream, until heal().
 * - setDelay(ms): every chunk is delivered ms later (order kept).
 * - setRate(bytesPerSecond): each direction carries at most that many bytes a second.
 */
export class FaultProxy {
  mode: ProxyMode = 'forward';
  /** Connections accepted and cut so far, for the scenario report. */
  readonly stats = { accepted: 0, cut: 0 };
  private delay = 0;
  private rate = 0;
  private readonly links = new Set<Link>();

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Listens on a free port of 127.0.0.1 and forwards to target (`host:port`). */
  static async start(target: string): Promise<FaultProxy> {
    const i = target.lastIndexOf(':');
    // Half-open allowed: a FIN is passed on by the pump once the bytes before it are delivered.
    const server = net.createServer({ noDelay: true, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as net.AddressInfo;
    return new FaultProxy(server, `127.0.0.1:${port}`, { host: target.slice(0, i), port: Number(target.slice(i + 1)) });
  }

  get connections(): number {
    return this.links.size;
  }

  setDelay(ms: number): void {
    this.delay = ms;
  }

  /** Caps each direction's throughput (0: no cap); applies to bytes read from now on. */
  setRate(bytesPerSecond: number): void {
    this.rate = bytesPerSecond;
  }

  /** Resets every open connection (RST to both peers). Returns how many were cut. */
  cut(): number {
    const n = this.links.size;
    for (const link of [...this.links]) this.drop(link);
    this.stats.cut += n;
    return n;
  }

  blackhole(): void {
    this.mode = 'blackhole';
    for (const link of this.links) for (const p of link.pumps) p.hold();
  }

  /** Ends a blackhole: held connections move again, and held new ones are connected upstream. */
  heal(): void {
    this.mode = 'forward';
    this.delay = 0;
    this.rate = 0;
    for (const link of [...this.links]) {
      if (link.upstream) for (const p of link.pumps) p.release();
      else this.connectUpstream(link);
    }
  }

  async close(): Promise<void> {
    for (const link of [...this.links]) this.drop(link);
    // Every link was reset above; the close callback only waits for their 'close' events.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5_000);
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private accept(client: net.Socket): void {
    this.stats.accepted++;
    client.setNoDelay(true);
    const link: Link = { client, pumps: [] };
    this.links.add(link);
    client.on('error', () => this.drop(link));
    client.on('close', () => this.closed(link));
    if (this.mode === 'blackhole') client.pause(); // accepted, then silence
    else this.connectUpstream(link);
  }

  private connectUpstream(link: Link): void {
    const upstream = net.connect({ ...this.target, noDelay: true, allowHalfOpen: true });
    link.upstream = upstream;
    upstream.on('error', () => this.drop(link));
    upstream.on('close', () => this.closed(link));
    const shape = () => ({ delayMs: this.delay, bytesPerSecond: this.rate });
    link.pumps = [new Pump(link.client, upstream, shape), new Pump(upstream, link.client, shape)];
    if (this.mode === 'blackhole') for (const p of link.pumps) p.hold();
    link.client.resume();
  }

  /** One side closed cleanly (its FIN was passed on by its pump); forget the link once both are gone. */
  private closed(link: Link): void {
    if ([link.client, link.upstream].every((s) => !s || s.destroyed)) this.links.delete(link);
  }

  /** Resets both sides of a link (RST): after a socket error on one side, or on cut(). */
  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    for (const p of link.pumps) p.stop();
    for (const s of [link.client, link.upstream]) if (s && !s.destroyed) s.resetAndDestroy();
  }
}
