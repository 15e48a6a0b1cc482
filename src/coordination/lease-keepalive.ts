import type { ILeaseKeepAliveResponse, Namespace } from 'etcd3';
import type { MonotonicClock } from './lease-fence.js';

/** What one keepalive round trip learned. */
export interface KeepaliveResult {
  /** When the request was sent, on the caller's monotonic clock (read before it left, so never late). */
  sentAt: number;
  /** The TTL etcd granted from its receipt on, in seconds; 0: the lease no longer exists. */
  ttlSeconds: number;
}

/**
 * One keepalive for a lease, on a stream of its own, with the time it was sent.
 *
 * Why not the keepalive loop etcd3's Lease runs for a campaign anyway: that loop pipelines
 * its requests on one long-lived stream and reports answers without saying which request
 * each one answers, and it replaces the stream on errors, when a late answer from the old
 * stream could be taken for the answer to a newer request. Self-fencing needs a lower bound
 * on the send time of the request etcd answered (lease-fence.ts), and one request per
 * stream gives it exactly. Both loops renew the same lease; etcd only counts the latest.
 *
 * Rejects when etcd does not answer within timeoutMs (a frozen or unreachable member); the
 * caller simply tries again on its next tick, and never learns anything false from a failure.
 */
export async function keepaliveOnce(ns: Namespace, leaseId: string, timeoutMs: number, clock: MonotonicClock): Promise<KeepaliveResult> {
  const sentAt = clock();
  const stream = await ns.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs });
  let res: ILeaseKeepAliveResponse;
  try {
    res = await new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
      stream.on('data', resolve);
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('the lease keepalive stream ended without an answer')));
      stream.write({ ID: leaseId });
    });
  } catch (err) {
    stream.cancel();
    throw err;
  }
  // Half-closes the call: etcd then ends it, and the deadline no longer matters.
  stream.end();
  return { sentAt, ttlSeconds: Number(res.TTL) };
}
