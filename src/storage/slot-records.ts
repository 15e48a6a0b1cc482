import type { SlotRecord } from './interfaces.js';
import { metaKey, MetaName, slotKey, slotRange } from './layout.js';
import type { BatchOp, Store } from './level-store.js';

/**
 * The master's replication slots as LevelDB records: one per follower, under
 * slotKey(followerId), holding u64 appliedSeq then one byte, 1 when the slot is lost.
 * Written in the log trimmer's batches (slot positions and the trim they allow commit
 * together) or on their own.
 */

/** The batch operation that stores one slot. */
export function slotPut(slot: SlotRecord): BatchOp {
  const value = Buffer.alloc(9);
  value.writeBigUInt64BE(slot.appliedSeq, 0);
  value[8] = slot.lost ? 1 : 0;
  return { type: 'put', key: slotKey(slot.followerId), value };
}

/** The batch operation that deletes one follower's slot. */
export function slotDel(followerId: number): BatchOp {
  return { type: 'del', key: slotKey(followerId) };
}

/** Every stored slot; a record that does not parse is skipped. */
export async function readSlots(db: Store): Promise<SlotRecord[]> {
  const slots: SlotRecord[] = [];
  const prefix = metaKey(MetaName.SLOT_PREFIX).length;
  for await (const [key, value] of db.iterator(slotRange())) {
    const followerId = Number(key.subarray(prefix).toString('ascii'));
    if (!Number.isSafeInteger(followerId) || value.length < 9) continue;
    slots.push({ followerId, appliedSeq: value.readBigUInt64BE(0), lost: value[8] === 1 });
  }
  return slots;
}
