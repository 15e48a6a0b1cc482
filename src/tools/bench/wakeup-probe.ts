import fs from 'node:fs';
import { quantileSorted } from './stats.js';
import { PACE_TICK_MS } from './load.js';

/**
 * The machine's wake-up floor while the lag rows run: every PACE_TICK_MS, one trivial
 * thread-pool round trip (an fs.stat: main thread -> libuv worker -> main thread), timed.
 * A replicated write makes several such hops (the master's commit and the follower's
 * apply each run on a worker, and each process's main thread must wake for the network),
 * so the lag's tail cannot be lower than this probe's tail on the same machine at the
 * same time. It runs in the benchmark process, beside the paced writer.
 */
export function startWakeupProbe(dir: string): () => { p99: number; p999: number } {
  const ms: number[] = [];
  let running = true;
  void (async () => {
    while (running) {
      const t = performance.now();
      await fs.promises.stat(dir);
      ms.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, PACE_TICK_MS));
    }
  })();
  return () => {
    running = false; // the loop ends after its current round trip
    const sorted = Float64Array.from(ms).sort();
    return { p99: quantileSorted(sorted, 0.99), p999: quantileSorted(sorted, 0.999) };
  };
}
