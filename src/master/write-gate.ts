import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { isStreamingLogState } from '../common/replication-state.js';
import type { FollowerRecord } from './follower-record.js';
import type { FollowerRegistry } from './follower-registry.js';
import { lagMs } from './replication-lag.js';
import type { ReplicationLog } from '../storage/interfaces.js';

/** --min-followers and --min-followers-max-lag-ms (Redis min-replicas-to-write / min-replicas-max-lag). */
export interface WriteGateOptions {
  minFollowers: number;
  maxLagMs: number;
}

export const DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS = 10_000;

export interface GateState {
  good: number;
  accepting: boolean;
  /** Per follower, why it does not count (only followers that do not). */
  notGood: string[];
}

/**
 * Refuses writes while fewer than minFollowers followers are good. A follower is good
 * when (1) its stream is open and past the position check (catching_up or streaming),
 * (2) it acknowledged something within the last maxLagMs, and (3) its replication lag
 * (age of the oldest entry it has not acknowledged) is at most maxLagMs.
 * The check runs once per Write request, before anything is written.
 */
export class WriteGate {
  constructor(
    readonly options: WriteGateOptions,
    private readonly registry: FollowerRegistry,
    private readonly wal: ReplicationLog,
  ) {}

  async state(now = Date.now()): Promise<GateState> {
    let good = 0;
    const notGood: string[] = [];
    for (const r of this.registry.list()) {
      const why = await this.whyNotGood(r, now);
      if (why) notGood.push(`follower ${r.id}: ${why}`);
      else good++;
    }
    return { good, accepting: good >= this.options.minFollowers, notGood };
  }

  /** Throws NOT_ENOUGH_FOLLOWERS unless enough followers are good. Free when --min-followers is 0. */
  async check(): Promise<void> {
    const { minFollowers, maxLagMs } = this.options;
    if (minFollowers === 0) return;
    const s = await this.state();
    if (s.accepting) return;
    const detail = s.notGood.length > 0 ? ` (${s.notGood.join('; ')})` : ' (no follower has connected)';
    throw new ReplicatorError(
      ErrorCode.NOT_ENOUGH_FOLLOWERS,
      `refusing writes: ${s.good} follower${s.good === 1 ? ' is' : 's are'} connected with lag <= ${maxLagMs} ms, --min-followers requires ${minFollowers}${detail}; nothing was written`,
    );
  }

  private async whyNotGood(r: FollowerRecord, now: number): Promise<string | undefined> {
    if (!isStreamingLogState(r.state)) return r.state;
    const ackAge = now - r.lastAckTimeMs;
    if (r.lastAckTimeMs === 0) return 'no acknowledgement yet';
    if (ackAge > this.options.maxLagMs) return `last acknowledgement ${ackAge} ms ago`;
    const lag = await lagMs(this.wal, r.ackedSeq, now);
    if (lag > this.options.maxLagMs) return `lag ${lag} ms`;
    return undefined;
  }
}
