import { DEFAULT_MASTER_ADDRESS, parseAddress } from '../common/config.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { OptionSpec } from '../common/options.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import { fetchStatus } from '../wire/rpc-client.js';
import type { ClientSecurity } from '../wire/security.js';

/**
 * Finding the master among several addresses (`--master a,b,c`), as a client that knows
 * the cluster's nodes but not which of them is the master now (after a promotion, say).
 *
 * Every address is asked for its Status at once, with a short deadline. The master is the
 * node answering role "master" (or no role: an older master) at the highest epoch; a
 * master that reports a newer epoch than its own (role "deposed", or seen epoch above its
 * epoch) acknowledges no write and is never chosen. The newest epoch known is the highest
 * of every answer's epoch, seen epoch and (a follower's) own epoch: a writer sends it with
 * its writes, so a deposed master that missed its deposition refuses them (STALE_EPOCH).
 *
 * One address: nobody is asked; the tool talks to it as before (no extra round trip).
 */

/** Deadline of each Status call while looking for the master (bounded by the tool's --timeout-ms). */
export const STATUS_PROBE_TIMEOUT_MS = 2_000;

/** --master as the tools that reach the master take it: one address, or several comma-separated. */
export const MASTER_ADDRESSES_OPTION: Record<string, OptionSpec> = {
  master: {
    type: 'string',
    default: DEFAULT_MASTER_ADDRESS,
    env: 'LR_MASTER_ADDRESS',
    describe:
      'Address of the master, or of several nodes comma-separated (host:port,host:port,...): each is asked for its status and the one that answers as master at the newest epoch is used',
    parse: parseMasterAddresses,
  },
};

/** `host:port[,host:port...]`: each checked like one address, blanks around commas ignored, repeats dropped. */
export function parseMasterAddresses(raw: unknown, flag = '--master'): string[] {
  const parts = String(raw ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw new ReplicatorError(ErrorCode.INVALID_ADDRESS, `${flag} needs at least one host:port, got ${JSON.stringify(String(raw ?? ''))}`);
  const out: string[] = [];
  for (const p of parts) {
    let address: string;
    try {
      address = parseAddress(p);
    } catch (err) {
      if (!isReplicatorError(err)) throw err;
      throw new ReplicatorError(err.code, `${flag}: ${err.message}${parts.length > 1 ? ' (in a comma-separated list)' : ''}`);
    }
    if (!out.includes(address)) out.push(address);
  }
  return out;
}

/** What one address answered: its Status, or why it did not. */
export type StatusAnswer = { address: string; status: StatusResponse__Output; error?: undefined } | { address: string; status?: undefined; error: ReplicatorError };

export type NodeRole = 'master' | 'deposed' | 'follower';

/** A node's role from its Status: an empty role is an older master; a master that knows of a newer epoch is deposed. */
export function roleOf(s: StatusResponse__Output): NodeRole {
  if (s.role === 'follower') return 'follower';
  if (s.role === 'deposed') return 'deposed';
  if (s.seenEpoch > s.epoch) return 'deposed';
  return 'master';
}

/** The newest epoch any answer knows of: the highest epoch, seen epoch and follower's own epoch (0 when none says). */
export function newestEpoch(answers: readonly StatusAnswer[]): number {
  let newest = 0;
  for (const a of answers) {
    if (!a.status) continue;
    newest = Math.max(newest, a.status.epoch, a.status.seenEpoch, a.status.self?.epoch ?? 0);
  }
  return newest;
}

/** One address's answer in a few words, for an error that lists them all. */
export function describeAnswer(a: StatusAnswer): string {
  if (!a.status) return `${a.address}: ${a.error.message} [${a.error.code}]`;
  const s = a.status;
  switch (roleOf(s)) {
    case 'follower': {
      const f = s.self;
      const id = f?.followerId ?? s.nodeId;
      const epoch = f?.epoch || s.epoch;
      const master = f?.masterAddress || s.masterAddress;
      return `${a.address}: follower${id ? ` ${id}` : ''}${epoch ? ` at epoch ${epoch}` : ''}${master ? `, following the master at ${master}` : ''}`;
    }
    case 'deposed':
      return `${a.address}: deposed master of epoch ${s.epoch}${s.nodeId ? ` (node ${s.nodeId})` : ''}, knows of epoch ${Math.max(s.seenEpoch, s.epoch)}${s.masterAddress && s.masterAddress !== a.address ? `; names the master at ${s.masterAddress}` : ''}`;
    default:
      return `${a.address}: master at epoch ${s.epoch}${s.nodeId ? ` (node ${s.nodeId})` : ''}`;
  }
}

export interface FoundMaster {
  address: string;
  status: StatusResponse__Output;
  /** The newest epoch any answer knew of (at least the master's own). */
  newestEpoch: number;
  answers: StatusAnswer[];
}

/** Two answers from one node reached by two addresses (localhost:1 and 127.0.0.1:1): same node id and history. */
function sameNode(a: StatusResponse__Output, b: StatusResponse__Output): boolean {
  return a.nodeId === b.nodeId && a.historyId.equals(b.historyId);
}

/**
 * The master among the answers: role master at the highest epoch. Answers from the same
 * node under several addresses count once (the first address listed is used). Two
 * different nodes both master at that epoch, or no master at all: MASTER_UNAVAILABLE,
 * saying what every address answered.
 */
export function chooseMaster(answers: readonly StatusAnswer[]): FoundMaster {
  const masters = answers.filter((a): a is StatusAnswer & { status: StatusResponse__Output } => a.status !== undefined && roleOf(a.status) === 'master');
  const all = answers.map(describeAnswer).join('; ');
  if (masters.length === 0) {
    // Followers and deposed masters name the master as they know it: worth adding to the list.
    const named = [...new Set(answers.flatMap((a) => (a.status ? [a.status.self?.masterAddress || a.status.masterAddress] : [])).filter((m) => m && !answers.some((a) => a.address === m)))];
    const hint = named.length > 0 ? `; they name ${named.join(', ')} as the master: add ${named.length > 1 ? 'those' : 'it'} to --master` : '';
    throw new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `none of the ${answers.length} addresses answered as the master (${all})${hint}`);
  }
  const top = Math.max(...masters.map((m) => m.status.epoch));
  const atTop = masters.filter((m) => m.status.epoch === top);
  const chosen = atTop[0];
  const others = atTop.filter((m) => !sameNode(m.status, chosen.status));
  if (others.length > 0) {
    throw new ReplicatorError(
      ErrorCode.MASTER_UNAVAILABLE,
      `${others.length + 1} different nodes answer as master at epoch ${top} (${[chosen, ...others].map(describeAnswer).join('; ')}): refusing to choose one; are these addresses of one cluster?`,
    );
  }
  return { address: chosen.address, status: chosen.status, newestEpoch: Math.max(top, newestEpoch(answers)), answers: [...answers] };
}

/** Every address's Status, asked at once; a failure is an answer too. */
export function askEveryStatus(addresses: readonly string[], security: ClientSecurity, timeoutMs: number): Promise<StatusAnswer[]> {
  return Promise.all(
    addresses.map(async (address): Promise<StatusAnswer> => {
      try {
        return { address, status: await fetchStatus(address, security, timeoutMs) };
      } catch (err) {
        const error = isReplicatorError(err) ? err : new ReplicatorError(ErrorCode.INTERNAL, String((err as Error)?.message ?? err));
        return { address, error };
      }
    }),
  );
}

/**
 * The master among addresses (several; see chooseMaster). A refused token or TLS
 * handshake from every address is that error, not "no master": the user must fix it.
 */
export async function findMaster(addresses: readonly string[], security: ClientSecurity, timeoutMs: number): Promise<FoundMaster> {
  const answers = await askEveryStatus(addresses, security, Math.min(timeoutMs, STATUS_PROBE_TIMEOUT_MS));
  const errors = answers.flatMap((a) => (a.error ? [a.error] : []));
  const auth: string[] = [ErrorCode.UNAUTHENTICATED, ErrorCode.PERMISSION_DENIED, ErrorCode.TLS_FAILED];
  if (errors.length === answers.length && errors.every((e) => e.code === errors[0].code) && auth.includes(errors[0].code)) {
    throw new ReplicatorError(errors[0].code, `every address refused the status call: ${answers.map(describeAnswer).join('; ')}`);
  }
  return chooseMaster(answers);
}
