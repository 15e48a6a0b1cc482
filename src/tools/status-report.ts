import type { FollowerSelf__Output } from '../wire/generated/levelreplicator/v1/FollowerSelf.js';
import type { FollowerStatus__Output } from '../wire/generated/levelreplicator/v1/FollowerStatus.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import { stateFromWire } from '../wire/follower-status-state.js';
import { humanAgo, humanBytes, humanDuration } from './human-units.js';

/**
 * How replication-status prints a Status answer: a master's (its log and every follower's
 * slot) or a follower's own view. The JSON keeps the names and types it always had and
 * adds fields; a value the node does not know (after a master restart, a follower it has
 * not heard from since) is null in JSON and `unknown` in the table, never 0, `never` or `no`.
 */

export function isFollowerView(s: StatusResponse__Output): boolean {
  return s.role === 'follower' && s.self !== null;
}

export function toJson(address: string, s: StatusResponse__Output): object {
  if (isFollowerView(s)) return { role: 'follower', follower: selfJson(address, s.self!) };
  return {
    role: 'master',
    master: {
      address,
      version: s.version,
      historyId: s.historyId.toString('hex'),
      epoch: s.epoch,
      firstSeq: s.firstSeq,
      lastSeq: s.lastSeq,
      logBytes: Number(s.logBytes),
      timeMs: Number(s.masterTimeMs),
      writeRate: s.writeRate,
      acceptingWrites: s.acceptingWrites,
      minFollowers: s.minFollowers,
      minFollowersMaxLagMs: Number(s.minFollowersMaxLagMs),
      goodFollowers: s.goodFollowers,
      defaultAckFollowers: s.defaultAckFollowers,
      defaultAckTimeoutMs: s.defaultAckTimeoutMs,
    },
    followers: s.followers.map((f) => ({
      id: f.followerId,
      state: stateFromWire(f.state),
      connected: f.connected,
      seen: f.seen,
      sinceMs: Number(f.sinceMs) || null,
      appliedSeq: f.appliedSeq,
      sentSeq: f.sentSeq,
      lagEntries: f.lagEntries,
      lagMs: Number(f.lagMs),
      lastAckTimeMs: Number(f.lastAckTimeMs) || (f.seen ? 0 : null),
      bytesSent: Number(f.bytesSent),
      durable: f.seen ? f.durable : null,
      address: f.address,
      readAddress: f.readAddress,
      lastError: f.lastError,
      slotLost: f.slotLost,
      slotEntries: f.slotEntries,
      slotBytes: Number(f.slotBytes),
      snapshotting: f.snapshotting,
      snapshotProgress: f.snapshotProgress
        ? {
            seq: f.snapshotProgress.seq,
            keysSent: f.snapshotProgress.keysSent,
            bytesSent: Number(f.snapshotProgress.bytesSent),
            approxBytes: Number(f.snapshotProgress.approxBytes),
          }
        : null,
    })),
  };
}

function selfJson(address: string, f: FollowerSelf__Output) {
  return {
    id: f.followerId,
    address,
    masterAddress: f.masterAddress,
    state: stateFromWire(f.state),
    sinceMs: Number(f.sinceMs) || null,
    appliedSeq: f.appliedSeq,
    masterLastSeq: f.masterLastSeq,
    lagEntries: f.lagEntries,
    lagMs: Number(f.lagMs),
    historyId: f.historyId.toString('hex'),
    durable: f.durable,
    timeMs: Number(f.timeMs),
    lastError: f.lastError,
  };
}

export function toText(address: string, s: StatusResponse__Output): string {
  return isFollowerView(s) ? selfText(address, s.self!) : masterText(address, s);
}

function selfText(address: string, f: FollowerSelf__Output): string {
  const now = Number(f.timeMs);
  const since = Number(f.sinceMs);
  const lines = [
    `follower ${f.followerId} ${address}  state ${stateFromWire(f.state)}${since > 0 ? ` since ${humanAgo(since, now, 'unknown')}` : ''}  master ${f.masterAddress}`,
    `applied ${f.appliedSeq}  master lastSeq ${f.masterLastSeq} (as last heard)  lag ${f.lagEntries} entries, ${humanDuration(Number(f.lagMs))}  sync ${f.durable ? 'yes' : 'no'}  history ${f.historyId.toString('hex') || '-'}`,
  ];
  if (f.lastError) lines.push(`last error: ${f.lastError}`);
  return lines.join('\n') + '\n';
}

function masterText(address: string, s: StatusResponse__Output): string {
  const now = Number(s.masterTimeMs);
  const retained = BigInt(s.lastSeq) - BigInt(s.firstSeq) + 1n;
  const lines = [
    `master ${address}  version ${s.version || 'unknown'}  history ${s.historyId.toString('hex')} epoch ${s.epoch}  firstSeq ${s.firstSeq}  lastSeq ${s.lastSeq}  log ${retained > 0n ? retained : 0n} entries ${humanBytes(Number(s.logBytes))}  writes/s ${s.writeRate.toFixed(1)}`,
    `acks: ${s.defaultAckFollowers === 0 ? 'async (committed on the master)' : `wait for ${s.defaultAckFollowers} followers, up to ${s.defaultAckTimeoutMs} ms`}` +
      (s.minFollowers > 0
        ? `  min-followers ${s.minFollowers} (lag <= ${s.minFollowersMaxLagMs} ms): ${s.goodFollowers} good, ${s.acceptingWrites ? 'accepting writes' : 'REFUSING WRITES'}`
        : ''),
    '',
  ];
  if (s.followers.length === 0) {
    lines.push('no followers are registered');
    return lines.join('\n') + '\n';
  }
  // The first columns keep the order they always had (FOLLOWER STATE APPLIED ...): scripts cut by position.
  const rows = [['FOLLOWER', 'STATE', 'APPLIED', 'SENT', 'LAG', 'LAG_TIME', 'LAST_ACK', 'SINCE', 'SENT_BYTES', 'SLOT_ENTRIES', 'SLOT_BYTES', 'SYNC', 'ADDRESS', 'READ_ADDRESS']];
  for (const f of s.followers) rows.push(followerRow(f, now));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  for (const f of s.followers) {
    const p = f.snapshotProgress;
    if (p) {
      const approx = Number(p.approxBytes);
      const pct = approx > 0 ? ` (${Math.min(100, Math.floor((Number(p.bytesSent) * 100) / approx))}%)` : '';
      lines.push(`follower ${f.followerId}: snapshot at seq ${p.seq}: ${p.keysSent} keys, ${humanBytes(Number(p.bytesSent))} sent of about ${humanBytes(approx)}${pct}`);
    }
    if (f.slotLost) lines.push(`follower ${f.followerId}: fell behind the log retention cap; the log no longer waits for it (it gets a snapshot if its next entry is trimmed before it returns)`);
    if (f.lastError) lines.push(`follower ${f.followerId}: ${f.lastError}`);
  }
  return lines.join('\n') + '\n';
}

function followerRow(f: FollowerStatus__Output, now: number): string[] {
  // Known only from its persisted slot: the master has not heard from it since it started.
  const unknown = !f.seen;
  return [
    String(f.followerId),
    stateFromWire(f.state) + (f.slotLost ? ',SLOT-LOST' : ''),
    f.appliedSeq,
    f.sentSeq,
    f.lagEntries,
    humanDuration(Number(f.lagMs)),
    humanAgo(Number(f.lastAckTimeMs), now, unknown ? 'unknown' : 'never'),
    humanAgo(Number(f.sinceMs), now, 'unknown'),
    humanBytes(Number(f.bytesSent)),
    f.slotEntries,
    humanBytes(Number(f.slotBytes)),
    unknown ? 'unknown' : f.durable ? 'yes' : 'no',
    f.address || (unknown ? 'unknown' : '-'),
    f.readAddress || (unknown ? 'unknown' : '-'),
  ];
}
