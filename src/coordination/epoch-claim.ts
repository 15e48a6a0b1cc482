import type { EtcdConnection } from './etcd-connection.js';
import { MAX_EPOCH } from './records.js';

/** The cluster's last epoch, relative to its prefix: written only by a leader, never leased. */
export const EPOCH_KEY = 'epoch';

/**
 * The epoch a newly elected leader starts: unique and above every epoch before it.
 *
 * The election key's create revision alone would be unique and increasing across leaders
 * of one etcd, but not above epochs the nodes already hold (manual promotions before etcd
 * was used, or an etcd that was wiped and begun again at revision 1). So the cluster's last
 * epoch is kept in etcd too, and a new leader takes
 *
 *   epoch = max(createRevision, lastEpoch + 1, floor + 1)
 *
 * where floor is the newest epoch this node knows of, and writes it back in one transaction
 * that holds only if its election key still exists (it still leads) and nobody wrote the
 * epoch key since it was read (compare-and-swap on its mod revision).
 *
 * Invariant: leaders are sequential (a key is elected only once every older key is gone),
 * and each writes an epoch above the last one written, so no two leaders share an epoch
 * and a later leader's is always higher. A leader that cannot write it (it lost the key,
 * or the swap raced) throws and must not lead.
 */
export async function claimEpoch(conn: EtcdConnection, campaignKey: string, createRevision: number, floor: number): Promise<number> {
  const key = conn.prefix + EPOCH_KEY;
  for (let attempt = 0; attempt < 3; attempt++) {
    const kv = (await conn.client.get(key).exec()).kvs[0];
    const last = kv ? Number(kv.value.toString()) : 0;
    if (!Number.isSafeInteger(last) || last < 0) throw new Error(`the cluster's epoch key holds ${JSON.stringify(kv?.value.toString())}, not an epoch`);
    const epoch = Math.max(createRevision, last + 1, floor + 1);
    if (epoch > MAX_EPOCH) throw new Error(`the next epoch ${epoch} does not fit an epoch (u32)`);
    const txn = conn.client.if(campaignKey, 'Create', '>', 0);
    const guarded = kv ? txn.and(key, 'Mod', '==', Number(kv.mod_revision)) : txn.and(key, 'Create', '==', 0);
    const res = await guarded.then(conn.client.put(key).value(String(epoch))).commit();
    if (res.succeeded) return epoch;
    const still = (await conn.client.get(campaignKey).exec()).kvs.length > 0;
    if (!still) throw new Error(`the election key ${campaignKey} is gone: not the leader any more`);
    // Someone wrote the epoch key between the read and the swap (an older leader that had
    // not noticed it was gone): read it again.
  }
  throw new Error('could not claim an epoch: the epoch key kept changing');
}
