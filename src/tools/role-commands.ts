import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import type { PromoteResponse__Output } from '../wire/generated/levelreplicator/v1/PromoteResponse.js';
import type { PauseWritesResponse__Output } from '../wire/generated/levelreplicator/v1/PauseWritesResponse.js';
import { adminClient, callUnary, fetchStatus } from '../wire/rpc-client.js';
import type { ClientSecurity } from '../wire/security.js';
import { seqToWire } from '../wire/seq.js';

/** Deadline of each Status asked while positions are compared. */
const STATUS_MS = 2_000;
const POLL_MS = 10;

/** One node's position as the promotion compares them. */
export interface NodePosition {
  address: string;
  role: string;
  id: number;
  appliedSeq: bigint;
  epoch: number;
  historyId: string;
  error?: string;
}

export function positionOf(address: string, s: StatusResponse__Output): NodePosition {
  if (s.role === 'follower' && s.self) {
    return { address, role: 'follower', id: s.self.followerId, appliedSeq: BigInt(s.self.appliedSeq), epoch: s.self.epoch, historyId: s.self.historyId.toString('hex') };
  }
  return { address, role: s.role || 'master', id: s.nodeId, appliedSeq: BigInt(s.lastSeq), epoch: s.epoch, historyId: s.historyId.toString('hex') };
}

export async function positions(addresses: readonly string[], security: ClientSecurity): Promise<NodePosition[]> {
  return Promise.all(
    addresses.map(async (address) => {
      try {
        return positionOf(address, await fetchStatus(address, security, STATUS_MS, 'follower'));
      } catch (err) {
        return { address, role: 'unreachable', id: 0, appliedSeq: 0n, epoch: 0, historyId: '', error: (err as Error).message };
      }
    }),
  );
}

/** How long promote waits for the followers' positions to stop moving, and how often it looks. */
const SETTLE_MAX_MS = 5_000;
const SETTLE_POLL_MS = 250;

/**
 * positions(), once they stop moving: right after the master died a follower may still be
 * applying what it had received, so comparing at once could pick a follower that another
 * overtakes a moment later (whose extra entries would then be rolled back). Two readings
 * SETTLE_POLL_MS apart that agree, or SETTLE_MAX_MS, whichever comes first.
 */
export async function settledPositions(addresses: readonly string[], security: ClientSecurity): Promise<NodePosition[]> {
  const key = (ps: NodePosition[]) => ps.map((p) => `${p.address}=${p.role}:${p.appliedSeq}`).join(',');
  const giveUpAt = Date.now() + SETTLE_MAX_MS;
  let last = await positions(addresses, security);
  while (Date.now() < giveUpAt) {
    await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    const now = await positions(addresses, security);
    if (key(now) === key(last)) return now;
    last = now;
  }
  return last;
}

/**
 * Why follower `target` must not be promoted (undefined: it may): a reachable master that
 * still takes writes (use switchover), or a reachable follower of the same history that
 * has applied more (promoting the target would lose what only that one has).
 */
export function promotionRefusal(all: readonly NodePosition[], target: NodePosition): string | undefined {
  const master = all.find((p) => p.role === 'master');
  if (master) return `the master at ${master.address} is up (epoch ${master.epoch}); use switchover to hand over without losing writes`;
  const ahead = all.filter((p) => p.role === 'follower' && p !== target && p.historyId === target.historyId && p.appliedSeq > target.appliedSeq);
  if (ahead.length > 0) {
    return `follower ${target.id} has applied seq ${target.appliedSeq}, but ${ahead.map((p) => `follower ${p.id} (${p.address}) has ${p.appliedSeq}`).join(', ')}: promote the most advanced follower`;
  }
  return undefined;
}

export function formatPositions(all: readonly NodePosition[]): string {
  const rows = all.map((p) => `${p.address}  ${p.role}${p.id ? ` ${p.id}` : ''}  ${p.error ? p.error : `applied ${p.appliedSeq}  epoch ${p.epoch}  history ${p.historyId}`}`);
  return `positions compared:\n  ${rows.join('\n  ')}\n`;
}

/** Polls the node at address until it answers as the master of `epoch`. */
export async function waitForMaster(address: string, epoch: number, security: ClientSecurity, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = await fetchStatus(address, security, STATUS_MS);
      if (s.role === 'master' && s.epoch === epoch) return;
    } catch {
      // The node is between roles: its address does not answer for a moment.
    }
    if (Date.now() > deadline) throw new ReplicatorError(ErrorCode.DEADLINE_EXCEEDED, `the node at ${address} did not become the master of epoch ${epoch} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export async function promoteAt(address: string, req: { minAppliedSeq: bigint; notify: string[]; minEpoch: number }, security: ClientSecurity, timeoutMs: number): Promise<PromoteResponse__Output> {
  const client = adminClient(address, security);
  try {
    return await callUnary<PromoteResponse__Output>(
      (o, cb) => client.Promote({ minAppliedSeq: seqToWire(req.minAppliedSeq), notify: req.notify, minEpoch: req.minEpoch }, o, cb),
      timeoutMs,
      { role: 'follower', address },
    );
  } finally {
    client.close();
  }
}

export async function pauseWrites(address: string, req: { timeoutMs?: number; resume?: boolean }, security: ClientSecurity, deadlineMs: number): Promise<PauseWritesResponse__Output> {
  const client = adminClient(address, security);
  try {
    return await callUnary<PauseWritesResponse__Output>((o, cb) => client.PauseWrites(req, o, cb), deadlineMs, { role: 'master', address });
  } finally {
    client.close();
  }
}

export async function follow(address: string, req: { upstream: string; epoch: number; masterAddress: string; epochFirstSeq: bigint }, security: ClientSecurity, deadlineMs: number): Promise<void> {
  const client = adminClient(address, security);
  try {
    await callUnary((o, cb) => client.Follow({ ...req, epochFirstSeq: seqToWire(req.epochFirstSeq) }, o, cb), deadlineMs, { role: 'follower', address });
  } finally {
    client.close();
  }
}
