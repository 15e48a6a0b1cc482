import type { Logger } from '../common/logger.js';
import { adminClient, callUnary } from '../wire/rpc-client.js';
import type { ClientSecurity } from '../wire/security.js';
import type { FollowRequest } from '../wire/generated/levelreplicator/v1/FollowRequest.js';

/** Wait between rounds of notices to nodes that did not answer yet. */
const RETRY_MS = 1_000;
/**
 * Deadline of one notice. Long on purpose: a SIGSTOPped old master has the request in its
 * socket and handles it first thing when it runs again.
 */
const NOTICE_DEADLINE_MS = 30_000;

/**
 * A new master tells the other nodes (the old master above all) to follow it, and keeps
 * telling those it cannot reach, in the background, until each has answered or this
 * master stops: a dead or paused old master learns of the new epoch as soon as it runs
 * again, and from then on acknowledges nothing.
 */
export class FollowNotifier {
  private stopped = false;

  constructor(
    private readonly addresses: readonly string[],
    private readonly request: FollowRequest,
    private readonly security: ClientSecurity | undefined,
    private readonly log: Logger,
  ) {}

  start(): void {
    for (const a of this.addresses) void this.notify(a);
  }

  stop(): void {
    this.stopped = true;
  }

  private async notify(address: string): Promise<void> {
    let logged = false;
    while (!this.stopped) {
      const client = adminClient(address, this.security);
      try {
        const res = await callUnary<{ role: string }>((o, cb) => client.Follow(this.request, o, cb), NOTICE_DEADLINE_MS, { role: 'follower', address });
        this.log.info({ address, role: res.role }, 'told a node to follow this master');
        return;
      } catch (err) {
        if (!logged) this.log.warn({ address, err: (err as Error).message }, 'could not tell a node to follow this master yet; retrying in the background');
        logged = true;
      } finally {
        client.close();
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
}
