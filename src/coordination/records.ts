import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * The values this module keeps in etcd, as JSON: what a leader announces under its election
 * key and what each node publishes under members/<nodeId>. Other nodes, clients and
 * operators (etcdctl) read them, so they are an external format: fields are only ever added.
 * A seq is a bigint in code and a decimal string in JSON (a JSON number loses precision past
 * 2^53); everything read back is checked, and a malformed value is an error, never guessed at.
 */

/** Epochs are u32 on disk and on the wire (src/storage/epoch-history.ts). */
export const MAX_EPOCH = 0xffff_ffff;
const MAX_SEQ = 0xffff_ffff_ffff_ffffn;

/** The leader key's value: who the master is and where clients and followers reach it. */
export interface LeaderRecord {
  nodeId: number;
  /** host:port of its gRPC server. */
  address: string;
  /**
   * Its epoch (the election key's create revision, see leader-lease.ts). Absent for the
   * moment between winning and announcing it: such a leader acknowledges nothing yet.
   */
  epoch?: number;
}

export const MEMBER_ROLES = ['master', 'follower', 'deposed'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

/** A node's published position: what a candidate compares itself with before campaigning. */
export interface MemberRecord {
  nodeId: number;
  address: string;
  role: MemberRole;
  /** The last seq applied to its store. */
  appliedSeq: bigint;
  /** The entry chain's checksum at appliedSeq (u32): two nodes at one seq agree iff these do. */
  appliedChecksum: number;
  /** The newest epoch in its history. */
  epoch: number;
  /** Whether the master counted it for --ack-followers acknowledgements (absent: unknown). */
  ackEligible?: boolean;
}

function invalid(what: string, detail: string): never {
  throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `malformed ${what} in etcd: ${detail}`);
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    invalid(what, `not JSON: ${JSON.stringify(text.slice(0, 100))}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(what, 'not a JSON object');
  return v as Record<string, unknown>;
}

function positiveInt(o: Record<string, unknown>, field: string, what: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) invalid(what, `${field} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function epochField(o: Record<string, unknown>, what: string): number {
  const v = positiveInt(o, 'epoch', what);
  if (v > MAX_EPOCH) invalid(what, `epoch ${v} is above ${MAX_EPOCH}`);
  return v;
}

function addressField(o: Record<string, unknown>, what: string): string {
  const v = o.address;
  if (typeof v !== 'string' || v === '') invalid(what, `address must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

export function encodeLeader(r: LeaderRecord): string {
  return JSON.stringify(r.epoch === undefined ? { nodeId: r.nodeId, address: r.address } : { nodeId: r.nodeId, address: r.address, epoch: r.epoch });
}

export function decodeLeader(text: string): LeaderRecord {
  const what = 'leader record';
  const o = parseObject(text, what);
  const r: LeaderRecord = { nodeId: positiveInt(o, 'nodeId', what), address: addressField(o, what) };
  if (o.epoch !== undefined) r.epoch = epochField(o, what);
  return r;
}

export function encodeMember(r: MemberRecord): string {
  return JSON.stringify({
    nodeId: r.nodeId,
    address: r.address,
    role: r.role,
    appliedSeq: r.appliedSeq.toString(),
    appliedChecksum: r.appliedChecksum,
    epoch: r.epoch,
    ...(r.ackEligible === undefined ? {} : { ackEligible: r.ackEligible }),
  });
}

export function decodeMember(text: string): MemberRecord {
  const what = 'member record';
  const o = parseObject(text, what);
  const role = o.role;
  if (!MEMBER_ROLES.includes(role as MemberRole)) invalid(what, `role must be one of ${MEMBER_ROLES.join(', ')}, got ${JSON.stringify(role)}`);
  const seq = o.appliedSeq;
  if (typeof seq !== 'string' || !/^[0-9]{1,20}$/.test(seq) || BigInt(seq) > MAX_SEQ) invalid(what, `appliedSeq must be a decimal string of a u64, got ${JSON.stringify(seq)}`);
  const checksum = o.appliedChecksum;
  if (typeof checksum !== 'number' || !Number.isInteger(checksum) || checksum < 0 || checksum > 0xffff_ffff) {
    invalid(what, `appliedChecksum must be a u32, got ${JSON.stringify(checksum)}`);
  }
  const r: MemberRecord = {
    nodeId: positiveInt(o, 'nodeId', what),
    address: addressField(o, what),
    role: role as MemberRole,
    appliedSeq: BigInt(seq),
    appliedChecksum: checksum,
    epoch: epochField(o, what),
  };
  if (o.ackEligible !== undefined) {
    if (typeof o.ackEligible !== 'boolean') invalid(what, `ackEligible must be a boolean, got ${JSON.stringify(o.ackEligible)}`);
    r.ackEligible = o.ackEligible;
  }
  return r;
}

/** Checks a record before it is published, so a bad value fails its writer and never reaches readers. */
export function checkMember(r: MemberRecord): MemberRecord {
  return decodeMember(encodeMember(r));
}
