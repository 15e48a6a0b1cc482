import net from 'node:net';

/**
 * A minimal Redis (RESP2) connection for the benchmark's polling: INFO every few ms over
 * one socket, instead of a redis-cli process per poll, whose start-up cost (several ms of
 * CPU each) would slow the Redis being measured on the same two cores.
 * Replies supported: simple strings, errors, integers and bulk strings.
 */
export class RespConnection {
  private readonly waiting: { resolve: (v: string) => void; reject: (e: Error) => void }[] = [];
  private readonly parser = new RespReplyParser();

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      try {
        for (const reply of this.parser.push(d)) {
          const w = this.waiting.shift();
          if (!w) throw new Error('a Redis reply with no request waiting');
          if (reply instanceof Error) w.reject(reply);
          else w.resolve(reply);
        }
      } catch (err) {
        this.fail(err as Error);
      }
    });
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(new Error('the Redis connection closed')));
  }

  static async connect(port: number): Promise<RespConnection> {
    return new RespConnection(await connectSocket(port));
  }

  command(...args: string[]): Promise<string> {
    const parts = [`*${args.length}\r\n`];
    for (const a of args) parts.push(`$${Buffer.byteLength(a)}\r\n${a}\r\n`);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.sock.write(parts.join(''));
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private fail(err: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}

/** A TCP connection to a Redis on loopback, Nagle off (pipelined commands go out at once). */
export function connectSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      sock.setNoDelay(true);
      resolve(sock);
    });
  });
}

/** Splits a RESP2 byte stream into replies: a string per reply, an Error for an error reply. */
export class RespReplyParser {
  private buf: Buffer = Buffer.alloc(0);

  push(data: Buffer): (string | Error)[] {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    const out: (string | Error)[] = [];
    for (;;) {
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) break;
      const type = String.fromCharCode(this.buf[0]);
      const line = this.buf.toString('utf8', 1, eol);
      if (type === '+' || type === ':') {
        out.push(line);
      } else if (type === '-') {
        out.push(new Error(`Redis answered an error: ${line}`));
      } else if (type === '$') {
        const len = Number(line);
        if (len < 0) {
          out.push('');
        } else {
          if (this.buf.length < eol + 2 + len + 2) break; // the bulk string is not all here yet
          out.push(this.buf.toString('utf8', eol + 2, eol + 2 + len));
          this.buf = this.buf.subarray(eol + 2 + len + 2);
          continue;
        }
      } else {
        throw new Error(`unexpected Redis reply type ${JSON.stringify(type)}`);
      }
      this.buf = this.buf.subarray(eol + 2);
    }
    return out;
  }
}
