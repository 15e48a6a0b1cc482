import fs from 'node:fs';
import path from 'node:path';
import { encodeEntry, entryChecksum, GENESIS_CHECKSUM, MutationKind, type Mutation } from '../../wire/entry-codec.js';
import { encodeChunks } from '../../storage/log-chunk.js';
import { prepareWrites } from '../../wire/prepared-writes.js';
import { dataKey, logKey } from '../../storage/layout.js';
import { openStore, writeBatch, type BatchOp, type Store } from '../../storage/level-store.js';
import { APPLIED_SEQ_KEY, u64 } from '../../storage/layout.js';
import { quantileSorted } from './stats.js';
import type { Workload } from './workload.js';

export type RawMode = 'plain' | 'fsync' | 'log-per-entry' | 'log-chunk' | 'master' | 'follower';

/**
 * classic-level on its own, the limit everything else is compared with: N entries of the
 * workload written in batches, in one process, with the store code and options the nodes use.
 *   plain          one put per entry, no fsync;
 *   fsync          the same, with an fsync per batch;
 *   log-per-entry  plus a second record per entry in the same batch (an encoded log
 *                  entry under its seq, as a log kept inside the same LevelDB), no fsync;
 *   log-chunk      plus one record per batch holding the batch's encoded entries (the
 *                  master's layout, src/storage/log-chunk.ts), no fsync;
 *   master         log-chunk with an fsync per batch: the LevelDB part of a durable master;
 *   follower       one put per entry plus the applied seq, fsync per batch: the LevelDB
 *                  part of a durable follower (see raw-pair.ts).
 * Returns entries per second.
 */
export async function rawLevel(dir: string, w: Workload, mode: RawMode, entries: number, batch: number): Promise<number> {
  fs.rmSync(dir, { recursive: true, force: true });
  const db = await openStore(dir, { create: true });
  try {
    const started = performance.now();
    await writeRaw(db, w, mode, entries, batch);
    return entries / ((performance.now() - started) / 1000);
  } finally {
    await db.close();
    fs.rmSync(path.resolve(dir), { recursive: true, force: true });
  }
}

/** Writes entries 0..entries-1 of the workload into db as rawLevel's mode describes. */
export async function writeRaw(db: Store, w: Workload, mode: RawMode, entries: number, batch: number): Promise<void> {
  const withChunk = mode === 'log-chunk' || mode === 'master';
  const sync = mode === 'fsync' || mode === 'master' || mode === 'follower';
  let checksum = GENESIS_CHECKSUM;
  for (let i = 0; i < entries; i += batch) {
    const n = Math.min(batch, entries - i);
    const ops: BatchOp[] = [];
    const writes: Mutation[][] = [];
    for (let j = i; j < i + n; j++) {
      const key = w.key(j);
      const value = w.value(j);
      ops.push({ type: 'put', key: dataKey(0, key), value });
      if (mode === 'log-per-entry') {
        const entry = encodeEntry(BigInt(j + 1), Date.now(), [{ kind: MutationKind.PUT, key, value }], checksum);
        checksum = entryChecksum(entry);
        ops.push({ type: 'put', key: logKey(BigInt(j + 1)), value: entry });
      } else if (withChunk) {
        writes.push([{ kind: MutationKind.PUT, key, value }]);
      }
    }
    if (withChunk) {
      const encoded = encodeChunks(BigInt(i + 1), Date.now(), [prepareWrites(writes, 0)], checksum);
      checksum = encoded.lastChecksum;
      for (const c of encoded.chunks) ops.push({ type: 'put', key: logKey(c.lastSeq), value: c.bytes });
    } else if (mode === 'follower') {
      ops.push({ type: 'put', key: APPLIED_SEQ_KEY, value: u64(BigInt(i + n)) });
    }
    await writeBatch(db, ops, { sync });
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
