import { entryCommitTimeMs } from '../wire/entry-codec.js';
import type { ReplicationLog } from '../storage/interfaces.js';

/**
 * Replication lag in ms: how long ago the oldest entry the follower has not applied was
 * committed on the master (master clock); 0 when it has applied everything. Entries
 * near the tail come from memory; only a follower far behind costs a store read.
 */
export async function lagMs(wal: ReplicationLog, appliedSeq: bigint, now = Date.now()): Promise<number> {
  if (appliedSeq >= wal.lastSeq) return 0;
  const oldest = appliedSeq + 1n < wal.firstSeq ? wal.firstSeq : appliedSeq + 1n;
  const entry = await wal.entryAt(oldest);
  return entry ? Math.max(0, now - entryCommitTimeMs(entry)) : 0;
}

/** Replication lag in entries: master lastSeq - appliedSeq, never negative. */
export function lagEntries(wal: ReplicationLog, appliedSeq: bigint): bigint {
  return wal.lastSeq > appliedSeq ? wal.lastSeq - appliedSeq : 0n;
}
