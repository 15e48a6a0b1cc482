import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/processes.js';

/** A connected client with everything it has received and how its connection ended. */
async function connect(address: string): Promise<{ socket: net.Socket; received: () => string; closed: () => string | undefined }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const socket = net.connect({ host, port });
  let data = '';
  let closed: string | undefined;
  socket.on('data', (d) => (data += d));
  socket.on('error', (err: NodeJS.ErrnoException) => (closed = err.code));
  socket.on('close', () => (closed ??= 'closed'));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, received: () => data, closed: () => closed };
}

// The fault scenarios rely on these being real socket faults; prove each one against an echo server.
describe('fault proxy', () => {
  let echo: net.Server;
  let target = '';
  before(async () => {
    echo = net.createServer((s) => s.on('error', () => {}).pipe(s)); // resets are expected
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    target = `127.0.0.1:${(echo.address() as net.AddressInfo).port}`;
  });
  after(() => echo.close());

  it('forwards both ways, and cut() resets open connections while new ones work', async () => {
    const proxy = await FaultProxy.start(target);
    try {
      const c = await connect(proxy.address);
      c.socket.write('hello');
      await waitFor(() => c.received() === 'hello', 'the echo', 5_000);
      assert.equal(proxy.cut(), 1);
      await waitFor(() => c.closed(), 'the cut to reach the client', 5_000);
      assert.equal(c.closed(), 'ECONNRESET');
      const d = await connect(proxy.address);
      d.socket.write('again');
      await waitFor(() => d.received() === 'again', 'the echo after the cut', 5_000);
      d.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('blackhole() keeps connections open but silent (no FIN, no RST), and heal() delivers everything in order', async () => {
    // Its own echo server, which records what reaches it: connections, bytes, and ends.
    const upstream = { connections: 0, bytes: '', ended: 0 };
    const recorder = net.createServer((s) => {
      upstream.connections++;
      s.on('data', (d) => (upstream.bytes += d));
      s.on('end', () => upstream.ended++);
      s.on('error', () => upstream.ended++);
      s.pipe(s);
    });
    await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
    const proxy = await FaultProxy.start(`127.0.0.1:${(recorder.address() as net.AddressInfo).port}`);
    // The control path: the same hops (client, proxy, echo, proxy, client) in this same
    // process, through a proxy that forwards.
    const control = await FaultProxy.start(target);
    try {
      const c = await connect(proxy.address);
      await waitFor(() => upstream.connections === 1, 'the first connection to reach the echo server', 5_000);
      proxy.blackhole();
      c.socket.write('one,');
      const held = await connect(proxy.address); // accepted, but never connected upstream
      held.socket.write('held');
      c.socket.write('two');
      // Proving a negative needs a yardstick, and wall-clock time is a poor one (too short
      // on a loaded machine, always slow). Instead: round trips on the control path, each
      // written after the blackholed bytes. A leaking blackhole would move those bytes
      // through exactly the hops a control round trip takes, in the same event loop,
      // queued ahead of it; after 20 sequential control round trips any leak would long
      // have reached the echo server and come back.
      const ctl = await connect(control.address);
      for (let i = 0; i < 20; i++) {
        const expect = Array.from({ length: i + 1 }, (_, j) => `ping${j};`).join('');
        ctl.socket.write(`ping${i};`);
        await waitFor(() => ctl.received() === expect, `control round trip ${i}`, 5_000, 1);
      }
      assert.equal(upstream.bytes, '', 'no byte of the blackholed connection reached the server');
      assert.equal(upstream.connections, 1, 'the connection opened during the blackhole was not connected upstream');
      assert.equal(upstream.ended, 0, 'no FIN or RST reached the server');
      assert.equal(c.received(), '');
      assert.equal(held.received(), '');
      assert.equal(c.closed(), undefined, 'no FIN or RST reached the client');
      assert.equal(held.closed(), undefined);
      proxy.heal();
      // Held, not dropped: the same sockets (never closed) get every byte, in order.
      await waitFor(() => c.received() === 'one,two', 'the held bytes', 5_000);
      await waitFor(() => held.received() === 'held', 'the held connection', 5_000);
      assert.equal(upstream.connections, 2);
      assert.equal(c.closed(), undefined);
      c.socket.destroy();
      held.socket.destroy();
      ctl.socket.destroy();
    } finally {
      await proxy.close();
      await control.close();
      recorder.close();
    }
  });

  it('setRate() caps the throughput of each direction', async () => {
    const proxy = await FaultProxy.start(target);
    try {
      const c = await connect(proxy.address);
      proxy.setRate(100_000);
      const t0 = Date.now();
      c.socket.write(Buffer.alloc(50_000, 0x61)); // 0.5 s each way at 100 kB/s
      await waitFor(() => c.received().length === 50_000, 'the throttled echo', 10_000, 5);
      assert.ok(Date.now() - t0 >= 450, `50 kB took ${Date.now() - t0} ms through a 100 kB/s link`);
      c.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('setDelay() holds every chunk back by the delay, in order', async () => {
    const proxy = await FaultProxy.start(target);
    try {
      const c = await connect(proxy.address);
      proxy.setDelay(150);
      const t0 = Date.now();
      c.socket.write('a');
      c.socket.write('b');
      await waitFor(() => c.received() === 'ab', 'the delayed echo', 5_000, 5);
      assert.ok(Date.now() - t0 >= 290, `round trip took ${Date.now() - t0} ms, expected two delays of 150 ms`);
      c.socket.destroy();
    } finally {
      await proxy.close();
    }
  });
});
