import http from 'node:http';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { ErrorCode, ReplicatorError } from './errors.js';
import type { Logger } from './logger.js';
import { NODE_VERSION, VERSION } from './version.js';

/** Latency buckets (seconds) for calls that range from sub-ms commits to multi-second acknowledgement waits. */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * A registry of one node's metrics, with the standard process_* and nodejs_* metrics in it,
 * and lr_build_info: always 1, its labels say which build runs (the Prometheus idiom, so a
 * query can join any metric with the version that produced it).
 */
export function newMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'lr_build_info',
    help: 'Always 1; the labels name the level-replicator version and the node.js version this process runs',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  }).set({ version: VERSION, node: NODE_VERSION }, 1);
  return registry;
}

export interface MetricsServer {
  /** The bound address (host:port), with the real port when port 0 was asked for. */
  address: string;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics in the Prometheus text format on a plain HTTP listener; anything
 * else is 404. A scrape runs every metric's collect() (lag is computed then, not on
 * the write path).
 */
export function startMetricsServer(registry: Registry, listen: string, log: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: Error) => {
        log.warn({ err: err.message }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${err.message}\n`);
      },
    );
  });
  // A scraper keeps connections open; they must not hold the process up at shutdown.
  server.keepAliveTimeout = 5_000;
  const sep = listen.lastIndexOf(':');
  const host = listen.slice(0, sep).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(sep + 1));
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const inUse = err.code === 'EADDRINUSE';
      reject(
        new ReplicatorError(
          inUse ? ErrorCode.ADDRESS_IN_USE : ErrorCode.INVALID_ADDRESS,
          inUse ? `metrics address ${listen} is already in use` : `cannot serve metrics on ${listen}: ${err.message}`,
          { cause: err },
        ),
      );
    });
    server.listen(port, host, () => {
      const bound = server.address();
      const boundPort = typeof bound === 'object' && bound ? bound.port : port;
      resolve({
        address: `${listen.slice(0, sep)}:${boundPort}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
