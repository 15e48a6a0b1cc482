import fs from 'node:fs';
import path from 'node:path';
import { GENESIS_CHECKSUM, MutationKind, type Mutation } from '../../wire/entry-codec.js';
import { prepareWrites } from '../../wire/prepared-writes.js';
import { encodeChunks } from '../../storage/log-chunk.js';
import { FsLogFiles } from '../../storage/log-files.js';
import { APPLIED_SEQ_KEY, dataKey, u64 } from '../../storage/layout.js';
import { openStore, type Store } from '../../storage/level-store.js';
import { SegmentLog } from '../../storage/segment-log.js';
import { quantileSorted } from './stats.js';
import type { Workload } from './workload.js';

export type RawMode = 'plain' | 'fsync' | 'segment' | 'once';

/**
 * classic-level on its own, the limit everything else is compared with: N entries of the
 * workload written in batches, in one process, with the store code and options the nodes use.
 *   plain    one put per entry, no fsync;
 *   fsync    the same, with an fsync per batch;
 *   segment  what a durable node's storage does per group (the current layout): the
 *            batch's entries encoded and appended to a log segment file with one write and
 *            one fdatasync (SegmentLog, the product's own), then one put per entry plus the
 *            position in LevelDB, not synced;
 *   once     one put per entry plus the applied seq, fsync per batch: each byte written
 *            once, durably (any layout's best case; see raw-pair.ts).
 * Returns entries per second.
 */
export async function rawLevel(dir: string, w: Workload, mode: RawMode, entries: number, batch: number): Promise<number> {
  fs.rmSync(dir, { recursive: true, force: true });
  const db = await openStore(dir, { create: true });
  try {
    const started = performance.now();
    await writeRaw(db, w, mode, entries, batch, path.join(dir, 'log'));
    return entries / ((performance.now() - started) / 1000);
  } finally {
    await db.close();
    fs.rmSync(path.resolve(dir), { recursive: true, force: true });
  }
}

/** Writes entries 0..entries-1 of the workload into db (and, in segment mode, a log in logDir) as rawLevel's mode describes. */
export async function writeRaw(db: Store, w: Workload, mode: RawMode, entries: number, batch: number, logDir: string): Promise<void> {
  const log = mode === 'segment' ? await SegmentLog.open(new FsLogFiles(logDir)) : undefined;
  const sync = mode === 'fsync' || mode === 'once';
  let checksum = GENESIS_CHECKSUM;
  try {
    for (let i = 0; i < entries; i += batch) {
      const n = Math.min(batch, entries - i);
      const b = db.batch();
      const writes: Mutation[][] = [];
      for (let j = i; j < i + n; j++) {
        const key = w.key(j);
        const value = w.value(j);
        b.put(dataKey(0, key), value);
        if (log) writes.push([{ kind: MutationKind.PUT, key, value }]);
      }
      if (log) {
        const commitTimeMs = Date.now();
        const encoded = encodeChunks(BigInt(i + 1), commitTimeMs, [prepareWrites(writes, 0)], checksum);
        checksum = encoded.lastChecksum;
        await log.append(encoded.buf, encoded.ends, n, { seq: BigInt(i + n), checksum, commitTimeMs }, true);
      }
      if (log || mode === 'once') b.put(APPLIED_SEQ_KEY, u64(BigInt(i + n)));
      await b.write({ sync });
    }
  } finally {
    await log?.close();
  }
}

/**
 * The disk's fdatasync latency, the floor of every durable step: `samples` appends of
 * 4 KiB to a file in dir, each followed by fdatasync. Returns [p50, p99] in ms.
 */
export function fsyncLatencyMs(dir: string, samples = 200): [number, number] {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'fsync-probe');
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(4096, 1);
  const ms: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      fs.writeSync(fd, block);
      const t = performance.now();
      fs.fdatasyncSync(fd);
      ms.push(performance.now() - t);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  ms.sort((a, b) => a - b);
  return [quantileSorted(ms, 0.5), quantileSorted(ms, 0.99)];
}
