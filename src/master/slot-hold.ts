import type { ReplicationLog } from '../storage/interfaces.js';
import { seqToWire } from '../wire/seq.js';
import type { FollowerRecord } from './follower-record.js';
import type { FollowerRegistry } from './follower-registry.js';

/**
 * What one follower's replication slot makes the master keep: the entries after its slot
 * position (lastSeq - appliedSeq) and about how many bytes of log they take (LevelDB's
 * estimate, as the bytes rules of retention use). Nothing when it has no slot or its slot
 * is lost: then the log does not wait for it. Other rules (--retain-entries, ...) may keep
 * the same entries anyway; this is what dropping the slot could free at most.
 */
export async function slotHold(registry: FollowerRegistry, wal: ReplicationLog, f: FollowerRecord): Promise<{ slotEntries: string; slotBytes: string }> {
  if (!registry.holdsLog(f) || f.appliedSeq >= wal.lastSeq) return { slotEntries: '0', slotBytes: '0' };
  // A slot below the log's start (persisted by an older run) holds only what is still there.
  const from = f.appliedSeq + 1n < wal.firstSeq ? wal.firstSeq : f.appliedSeq + 1n;
  return { slotEntries: seqToWire(wal.lastSeq - from + 1n), slotBytes: String(await wal.bytesFrom(from)) };
}
