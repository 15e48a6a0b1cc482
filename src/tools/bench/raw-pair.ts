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
 * Row 1e, the ceiling of durable ingest with one follower: two processes at once, one
 * doing only the LevelDB writes of a durable master (data and log chunk in one batch,
 * fsync per batch), the other only those of a durable follower (data and applied seq,
 * fsync per batch), each N entries in batches of `batch` (the master's largest group).
 * No gRPC, no decoding, no load generator: what classic-level alone costs the two nodes
 * on this machine. Timed from when both stores are open.
 *
 * Row 1f, with masterMode 'follower': the first process writes like a follower too (each
 * entry's bytes once, plus a small record), the best case of any log layout, e.g. one
 * that kept values only in the log and an index beside the data: what remains is what
 * LevelDB must do for a replicated write at all.
 */
export async function rawPair(dir: string, valueBytes: number, entries: number, batch: number, masterMode: 'master' | 'follower' = 'master'): Promise<RawPairFigures> {
  const kids = [masterMode, 'follower'].map((mode, i) =>
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
