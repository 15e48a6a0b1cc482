import fs from 'node:fs';
import path from 'node:path';
import { MutationKind, type Mutation } from '../../wire/entry-codec.js';
import { prepareWrites } from '../../wire/prepared-writes.js';
import { openMasterStore } from '../../storage/level-master-store.js';
import type { Workload } from './workload.js';

/** Entries per group while the log is built (the master's largest group by default). */
const BUILD_GROUP = 8_000;

/**
 * Row 8, start-up replay: the time to open a master whose LevelDB store is `entries`
 * behind its log (as after a power loss that took the store's unsynced writes, the worst
 * case), i.e. openMasterStore verifying every segment and re-applying every entry. Built
 * with the product's own commitGroup, then the store directory is swapped for the empty
 * one it started as. Returns seconds.
 */
export async function replayPhase(dir: string, w: Workload, entries: number): Promise<number> {
  fs.rmSync(dir, { recursive: true, force: true });
  const empty = `${dir}-empty-store`;
  fs.rmSync(empty, { recursive: true, force: true });
  try {
    let store = await openMasterStore(dir, { create: true });
    await store.close();
    fs.cpSync(path.join(dir, 'store'), empty, { recursive: true });
    store = await openMasterStore(dir, { create: false });
    for (let i = 0; i < entries; i += BUILD_GROUP) {
      const writes: Mutation[][] = [];
      let bytes = 0;
      for (let j = i; j < Math.min(entries, i + BUILD_GROUP); j++) {
        writes.push([{ kind: MutationKind.PUT, key: w.key(j), value: w.value(j) }]);
        bytes += w.key(j).length + w.valueBytes;
      }
      await store.commitGroup([prepareWrites(writes, bytes)], Date.now(), false);
    }
    await store.log.syncAll();
    await store.close();
    fs.rmSync(path.join(dir, 'store'), { recursive: true, force: true });
    fs.cpSync(empty, path.join(dir, 'store'), { recursive: true });
    const started = performance.now();
    store = await openMasterStore(dir, { create: false });
    const seconds = (performance.now() - started) / 1000;
    if (store.log.lastSeq !== BigInt(entries)) throw new Error(`replay: the log ends at ${store.log.lastSeq}, not ${entries}`);
    await store.close();
    return seconds;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(empty, { recursive: true, force: true });
  }
}
