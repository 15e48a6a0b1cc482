import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'raw-pair-child.js');

/** What a raw-pair-child reports: 'ready' once its store is open, then its result. */
export type RawPairMessage = { ready: true } | { perSecond: number; cpuMicrosPerEntry: number };

export interface RawPairFigures {
  /** N / time until both processes are done. */
  perSecond: number;
  /** CPU of each process (all its threads: JS, thread pool, LevelDB compaction) per entry. */
  masterCpuMicros: number;
  followerCpuMicros: number;
}

function result(m: RawPairMessage): { perSecond: number; cpuMicrosPerEntry: number } {
  if (!('perSecond' in m)) throw new Error('raw-pair child answered out of turn');
  return m;
}

/**
 * Row 1e, the storage ceiling of durable ingest with one follower: two processes at once,
 * each doing only what a durable node's storage does per group in the current layout
 * (raw-level.ts `segment`: the group's entries appended to a segment file with one
 * fdatasync, then the data and position in LevelDB without fsync), N entries in groups of
 * `batch` (the master's largest group). No gRPC, no decoding, no load generator. Timed
 * from when both stores are open.
 *
 * Row 1f, mode 'once': both processes write each entry's bytes once, durably (LevelDB with
 * an fsync per batch, plus a small record): the best case of any layout, what remains is
 * what LevelDB must do for a replicated durable write at all. The targets are
 * taken against it.
 */
export async function rawPair(dir: string, valueBytes: number, entries: number, batch: number, mode: 'segment' | 'once' = 'segment'): Promise<RawPairFigures> {
  const kids = [mode, mode].map((mode, i) =>
    fork(CHILD, [mode, path.join(dir, `${i}-${mode}`), String(valueBytes), String(entries), String(batch)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  try {
    const next = (k: ChildProcess) =>
      new Promise<RawPairMessage>((resolve, reject) => {
        k.once('message', (m) => resolve(m as RawPairMessage));
        k.once('exit', (code) => reject(new Error(`raw-pair child exited with ${code} before answering`)));
      });
    await Promise.all(kids.map(next));
    const started = performance.now();
    const done = kids.map((k) => next(k).then((r) => ({ ...result(r), at: performance.now() })));
    for (const k of kids) k.send('go');
    const [m, f] = await Promise.all(done);
    return {
      perSecond: entries / ((Math.max(m.at, f.at) - started) / 1000),
      masterCpuMicros: m.cpuMicrosPerEntry,
      followerCpuMicros: f.cpuMicrosPerEntry,
    };
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  }
}
