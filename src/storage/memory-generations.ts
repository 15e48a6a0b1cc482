import { DATA_GEN_KEY, otherGenerations } from './layout.js';
import type { DiskHandle } from './memory-disk.js';

/** The disk's active data generation (0 when none was ever switched to), for either role. */
export function activeGeneration(handle: DiskHandle): number {
  return handle.get(DATA_GEN_KEY)?.readUInt32BE() ?? 0;
}

/**
 * Deletes the user data of every generation but `gen` (leftovers of a follower's
 * interrupted or replaced snapshots), in one write made only when there is something to
 * delete, so an injected fault stays meant for the test's own writes.
 */
export async function clearOtherGenerations(handle: DiskHandle, gen: number): Promise<void> {
  const snap = handle.snapshot();
  const others = otherGenerations(gen);
  if (others.every((r) => snap.range(r.gte, r.lt).length === 0)) return;
  await handle.write(
    'clear',
    others.map((r) => ({ type: 'clear', ...r })),
    { sync: false },
  );
}
