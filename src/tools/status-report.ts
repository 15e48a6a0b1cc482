import type { FollowerStatus__Output } from '../wire/generated/levelreplicator/v1/FollowerStatus.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import type { EpochStart__Output } from '../wire/generated/levelreplicator/v1/EpochStart.js';
import { stateFromWire } from '../wire/follower-status-state.js';
import { humanAgo, humanBytes, humanDuration } from './human-units.js';
import { roleOf } from './master-finder.js';
import { treeNodes, treeText, type TreeNode } from './status-tree.js';

/**
 * How replication-status prints a Status answer: a master's (its log and every follower's
 * slot) or a follower's own view. The JSON keeps the names and types it always had and
 * adds fields; a value the node does not know (after a master restart, a follower it has
 * not heard from since) is null in JSON and `unknown` in the table, never 0, `never` or `no`.
 *
 * With a tree (status-tree.ts: every follower asked at its read address), the JSON gains
 * `tree` and each follower its `upstream`, and the text shows the tree in place of the table.
 */

export interface ReportExtras {
  /** The replication tree under the node asked (replication-status --tree, and always --json). */
  tree?: TreeNode;
  /** The newest epoch the addresses asked knew of (--master a,b,c), when above the node's own. */
  newestEpoch?: number;
}

/** `1@1 2@5301`: each epoch of a history at its first seq. */
export function epochsText(epochs: readonly EpochStart__Output[]): string {
  return epochs.map((e) => `${e.epoch}@${e.firstSeq}`).join(' ');
}

/** A chained checksum in hex, 8 digits (the same width whatever its value, for the eye and for cut). */
export function checksumText(checksum: number): string {
  return checksum.toString(16).padStart(8, '0');
}

function epochsJson(epochs: readonly EpochStart__Output[]) {
  return epochs.map((e) => ({ epoch: e.epoch, firstSeq: e.firstSeq }));
}

/** The upstream a follower of the tree said it streams from; null when it did not answer (or no tree). */
function upstreamOf(tree: TreeNode | undefined, followerId: number): string | null {
  if (!tree) return null;
  return treeNodes(tree).find((n) => n.role === 'follower' && n.id === followerId && n.reachable)?.upstream ?? null;
}

export function isFollowerView(s: StatusResponse__Output): boolean {
  return s.role === 'follower' && s.self !== null;
}

export function toJson(address: string, s: StatusResponse__Output, extras: ReportExtras = {}): object {
  const tree = extras.tree ? { tree: extras.tree } : {};
  if (isFollowerView(s)) {
    return { role: 'follower', follower: selfJson(address, s), followers: s.followers.map((f) => followerJson(f, extras.tree)), ...tree };
  }
  return {
    role: roleOf(s) === 'deposed' ? 'deposed' : 'master',
    master: {
      address,
      version: s.version,
      historyId: s.historyId.toString('hex'),
      epoch: s.epoch,
      nodeId: s.nodeId || null,
      epochs: epochsJson(s.epochs),
      seenEpoch: s.seenEpoch,
      masterAddress: s.masterAddress || null,
      newestEpoch: Math.max(s.epoch, s.seenEpoch, extras.newestEpoch ?? 0),
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
    followers: s.followers.map((f) => followerJson(f, extras.tree)),
    ...tree,
  };
}

function followerJson(f: FollowerStatus__Output, tree: TreeNode | undefined) {
  return {
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
    upstream: upstreamOf(tree, f.followerId),
  };
}

function selfJson(address: string, s: StatusResponse__Output) {
  const f = s.self!;
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
    upstreamAddress: f.upstreamAddress || f.masterAddress,
    epoch: f.epoch,
    // Its log's epoch history (empty from a follower older than the field).
    epochs: epochsJson(s.epochs),
    // Never below its own epoch: a follower older than the field sends no seen epoch.
    seenEpoch: Math.max(s.seenEpoch, f.epoch),
    chain: f.chain,
    appliedChecksum: f.appliedChecksum,
  };
}

export function toText(address: string, s: StatusResponse__Output, extras: ReportExtras = {}): string {
  return isFollowerView(s) ? selfText(address, s, extras) : masterText(address, s, extras);
}

function selfText(address: string, s: StatusResponse__Output, extras: ReportExtras): string {
  const f = s.self!;
  const now = Number(f.timeMs);
  const since = Number(f.sinceMs);
  const lines = [
    `follower ${f.followerId} ${address}  state ${stateFromWire(f.state)}${since > 0 ? ` since ${humanAgo(since, now, 'unknown')}` : ''}  master ${f.masterAddress}`,
    // Its position is (history, applied seq, checksum): equal triples are the same entry on two nodes.
    `applied ${f.appliedSeq}  master lastSeq ${f.masterLastSeq} (as last heard)  lag ${f.lagEntries} entries, ${humanDuration(Number(f.lagMs))}  sync ${f.durable ? 'yes' : 'no'}  history ${f.historyId.toString('hex') || '-'}  checksum ${checksumText(f.appliedChecksum)}`,
  ];
  // Its place in the tree: where it streams from, its epoch (its history once it has more
  // than one epoch: where a promotion started the current one), the node ids up to the master.
  const upstream = [`upstream ${f.upstreamAddress || f.masterAddress || 'unknown'}`, `epoch ${f.epoch || 'unknown'}`];
  if (s.epochs.length > 1) upstream.push(`epochs ${epochsText(s.epochs)}`);
  if (s.seenEpoch > f.epoch) upstream.push(`seen epoch ${s.seenEpoch}`);
  if (f.chain.length > 0) upstream.push(`chain ${f.chain.join(' -> ')}`);
  lines.push(upstream.join('  '));
  if (f.lastError) lines.push(`last error: ${f.lastError}`);
  // Chained followers streaming from it.
  if (extras.tree) lines.push('', treeText(extras.tree).trimEnd());
  else if (s.followers.length > 0) lines.push('', ...followerTable(s.followers, Number(f.timeMs)));
  lines.push(...followerNotes(s.followers));
  return lines.join('\n') + '\n';
}

function masterText(address: string, s: StatusResponse__Output, extras: ReportExtras): string {
  const now = Number(s.masterTimeMs);
  const retained = BigInt(s.lastSeq) - BigInt(s.firstSeq) + 1n;
  const deposed = roleOf(s) === 'deposed';
  // Node id, epoch history and seen epoch go after the epoch: the line's first words stay what scripts match.
  const epochs = [`node ${s.nodeId || '-'}`];
  if (s.epochs.length > 0) epochs.push(`epochs ${epochsText(s.epochs)}`);
  if (s.seenEpoch > s.epoch) epochs.push(`seen epoch ${s.seenEpoch}`);
  const lines = [
    `${deposed ? 'deposed' : 'master'} ${address}  version ${s.version || 'unknown'}  history ${s.historyId.toString('hex')} epoch ${s.epoch}  ${epochs.join('  ')}  firstSeq ${s.firstSeq}  lastSeq ${s.lastSeq}  log ${retained > 0n ? retained : 0n} entries ${humanBytes(Number(s.logBytes))}  writes/s ${s.writeRate.toFixed(1)}`,
    `acks: ${s.defaultAckFollowers === 0 ? 'async (committed on the master)' : `wait for ${s.defaultAckFollowers} followers, up to ${s.defaultAckTimeoutMs} ms`}` +
      (s.minFollowers > 0
        ? `  min-followers ${s.minFollowers} (lag <= ${s.minFollowersMaxLagMs} ms): ${s.goodFollowers} good, ${s.acceptingWrites ? 'accepting writes' : 'REFUSING WRITES'}`
        : ''),
  ];
  if (deposed) {
    lines.push(
      `DEPOSED: this master of epoch ${s.epoch} knows of epoch ${Math.max(s.seenEpoch, s.epoch)} and acknowledges no write${s.masterAddress && s.masterAddress !== address ? `; the master is at ${s.masterAddress}` : ''}`,
    );
  } else if ((extras.newestEpoch ?? 0) > s.epoch) {
    lines.push(`WARNING: a node asked knows of epoch ${extras.newestEpoch}, newer than this master's ${s.epoch}: this master is out of date and refuses writes that carry the newer epoch (STALE_EPOCH)`);
  }
  lines.push('');
  if (extras.tree) lines.push(treeText(extras.tree).trimEnd());
  if (s.followers.length === 0) {
    lines.push('no followers are registered');
    return lines.join('\n') + '\n';
  }
  if (!extras.tree) lines.push(...followerTable(s.followers, now));
  lines.push(...followerNotes(s.followers));
  return lines.join('\n') + '\n';
}

/** The follower table: a header and one row per follower. */
function followerTable(followers: readonly FollowerStatus__Output[], now: number): string[] {
  const lines: string[] = [];
  // The first columns keep the order they always had (FOLLOWER STATE APPLIED ...): scripts cut by position.
  const rows = [['FOLLOWER', 'STATE', 'APPLIED', 'SENT', 'LAG', 'LAG_TIME', 'LAST_ACK', 'SINCE', 'SENT_BYTES', 'SLOT_ENTRIES', 'SLOT_BYTES', 'SYNC', 'ADDRESS', 'READ_ADDRESS']];
  for (const f of followers) rows.push(followerRow(f, now));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  return lines;
}

/** One line per follower being sent a snapshot, whose slot is lost, or whose last subscription failed. */
function followerNotes(followers: readonly FollowerStatus__Output[]): string[] {
  const lines: string[] = [];
  for (const f of followers) {
    const p = f.snapshotProgress;
    if (p) {
      const approx = Number(p.approxBytes);
      const pct = approx > 0 ? ` (${Math.min(100, Math.floor((Number(p.bytesSent) * 100) / approx))}%)` : '';
      lines.push(`follower ${f.followerId}: snapshot at seq ${p.seq}: ${p.keysSent} keys, ${humanBytes(Number(p.bytesSent))} sent of about ${humanBytes(approx)}${pct}`);
    }
    if (f.slotLost) lines.push(`follower ${f.followerId}: fell behind the log retention cap; the log no longer waits for it (it gets a snapshot if its next entry is trimmed before it returns)`);
    if (f.lastError) lines.push(`follower ${f.followerId}: ${f.lastError}`);
  }
  return lines;
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
