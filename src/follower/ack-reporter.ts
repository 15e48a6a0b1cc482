import type { MasterClient } from '../wire/generated/levelreplicator/v1/Master.js';
import { deadlineIn } from '../wire/grpc-transport.js';
import type { Logger } from '../common/logger.js';
import { seqToWire } from '../wire/seq.js';

const ACK_DEADLINE_MS = 2_000;

/**
 * Reports the follower's applied seq to the master. At most one Ack call is in flight;
 * reports made meanwhile collapse into one carrying the newest seq, so a fast apply loop
 * never floods the master.
 */
export class AckReporter {
  private inFlight = false;
  private pending: bigint | undefined;
  private lastSent = -1n;
  private stopped = false;

  constructor(
    private readonly client: MasterClient,
    private readonly followerId: number,
    private readonly log: Logger,
  ) {}

  report(appliedSeq: bigint, force = false): void {
    if (this.stopped || (appliedSeq === this.lastSent && !force)) return;
    this.pending = appliedSeq;
    if (!this.inFlight) this.send();
  }

  /**
   * No Ack calls from now on, not even one a call in flight would chain: the follower is
   * stopping and closes the channel next (a call on a closed channel throws).
   */
  stop(): void {
    this.stopped = true;
    this.pending = undefined;
  }

  private send(): void {
    const seq = this.pending;
    if (seq === undefined || this.stopped) return;
    this.pending = undefined;
    this.inFlight = true;
    try {
      this.client.Ack(
        { followerId: this.followerId, appliedSeq: seqToWire(seq) },
        { deadline: deadlineIn(ACK_DEADLINE_MS) },
        (err) => {
          this.inFlight = false;
          if (err) this.log.debug({ err: err.message }, 'ack failed');
          else this.lastSent = seq;
          this.send();
        },
      );
    } catch (err) {
      // grpc-js throws, rather than calling back, on a channel already closed.
      this.inFlight = false;
      this.log.debug({ err: (err as Error).message }, 'ack failed');
    }
  }
}
