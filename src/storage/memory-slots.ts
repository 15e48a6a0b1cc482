import type { SlotRecord } from './interfaces.js';
import { MetaName, slotKey, slotRange } from './layout.js';
import type { BatchOp, DiskSnapshot } from './memory-disk.js';

/**
 * Replication slots on a memory disk, one record per follower under slotKey(id), with the
 * value the master has always stored: u64 applied seq, u8 lost (1) or held (0).
 */
export function slotOps(slots: readonly SlotRecord[]): BatchOp[] {
  return slots.map((s) => {
    const value = Buffer.alloc(9);
    value.writeBigUInt64BE(s.appliedSeq);
    value[8] = s.lost ? 1 : 0;
    return { type: 'put', key: slotKey(s.followerId), value };
  });
}

/** The operation that deletes one follower's slot. */
export function slotDel(followerId: number): BatchOp {
  return { type: 'del', key: slotKey(followerId) };
}

/** Every slot on the disk, by follower id. */
export function readSlots(snap: DiskSnapshot): SlotRecord[] {
  const { gte, lt } = slotRange();
  const prefixBytes = 1 + MetaName.SLOT_PREFIX.length;
  return snap
    .range(gte, lt)
    .map(([key, value]) => ({
      followerId: Number(key.subarray(prefixBytes).toString('ascii')),
      appliedSeq: value.readBigUInt64BE(0),
      lost: value[8] === 1,
    }))
    .sort((a, b) => a.followerId - b.followerId);
}
