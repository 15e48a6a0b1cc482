import type { FollowerStatus__Output } from '../wire/generated/levelreplicator/v1/FollowerStatus.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import { stateFromWire } from '../wire/follower-status-state.js';
import { roleOf, type NodeRole } from './master-finder.js';

/**
 * The replication tree as replication-status --tree (and always --json) shows it: the
 * node asked (the master, or a follower), its followers as it lists them, and under each
 * follower the followers it lists in its own Status (chained followers), asked at each
 * follower's read address. A node that does not answer is shown as unreachable with what
 * its upstream last knew of it: never an error of the whole command.
 */

export interface TreeNode {
  role: NodeRole;
  /** Node id of a master (0: none given), follower id of a follower. */
  id: number;
  /** Where it answers (a follower's read address); null when unknown (a follower known only from its slot). */
  address: string | null;
  state: string | null;
  /** From its own answer when it answered, else what its upstream last heard. */
  appliedSeq: string | null;
  /** Entries behind the master's last seq (as the node asked first knows it). */
  lagEntries: string | null;
  /** The node it streams from, as it says (followers only). */
  upstream: string | null;
  epoch: number | null;
  reachable: boolean;
  /** Why it was not asked, or what asking it failed with. */
  error: string | null;
  children: TreeNode[];
}

/** Asks the node at a read address for its Status (rejects with why not). */
export type StatusFetcher = (address: string) => Promise<StatusResponse__Output>;

/** At most this many nodes are asked, and this deep: a tree is for people, and a loop must end. */
const MAX_NODES = 256;
const MAX_DEPTH = 16;

interface Fetched {
  status?: StatusResponse__Output;
  error?: string;
}

/** The last seq lags are counted against: the master's, or (from a follower) the master's as last heard. */
function referenceSeq(s: StatusResponse__Output): bigint | undefined {
  if (roleOf(s) === 'follower') return s.self ? BigInt(s.self.masterLastSeq) : undefined;
  return BigInt(s.lastSeq);
}

function lag(ref: bigint | undefined, applied: string | null): string | null {
  if (ref === undefined || applied === null) return null;
  const d = ref - BigInt(applied);
  return (d > 0n ? d : 0n).toString();
}

/** A node from its own answer: what it says of itself. */
function selfNode(address: string | null, s: StatusResponse__Output, ref: bigint | undefined): TreeNode {
  const role = roleOf(s);
  if (role === 'follower' && s.self) {
    const f = s.self;
    return {
      role,
      id: f.followerId,
      address,
      state: stateFromWire(f.state),
      appliedSeq: f.appliedSeq,
      lagEntries: lag(ref, f.appliedSeq),
      upstream: f.upstreamAddress || f.masterAddress || null,
      epoch: f.epoch || s.epoch || null,
      reachable: true,
      error: null,
      children: [],
    };
  }
  return {
    role,
    id: s.nodeId,
    address,
    state: role,
    appliedSeq: s.lastSeq,
    lagEntries: lag(ref, s.lastSeq),
    upstream: null,
    epoch: s.epoch || null,
    reachable: true,
    error: null,
    children: [],
  };
}

/** A follower as its upstream lists it, and as it answered at its read address (if it did). */
function listedNode(f: FollowerStatus__Output, fetched: Fetched | undefined, ref: bigint | undefined): TreeNode {
  const address = f.readAddress || null;
  if (fetched?.status) {
    const own = selfNode(address, fetched.status, ref);
    // A node that answers as another one (an address reused, a promoted follower) says so.
    if (own.role === 'follower' && own.id !== f.followerId) own.error = `listed as follower ${f.followerId}, answers as follower ${own.id}`;
    return own;
  }
  const appliedSeq = f.appliedSeq;
  return {
    role: 'follower',
    id: f.followerId,
    address,
    state: stateFromWire(f.state),
    appliedSeq,
    lagEntries: lag(ref, appliedSeq),
    upstream: null,
    epoch: null,
    reachable: false,
    error: fetched?.error ?? 'read address unknown (not connected since its upstream started)',
    children: [],
  };
}

/**
 * Asks every follower under the node that answered `root` at rootAddress, level by level
 * (each level at once), and builds the tree. A follower listed by several nodes (a slot
 * left on its former upstream) is placed under the one it is connected to, else under the
 * first that lists it.
 */
export async function gatherTree(rootAddress: string, root: StatusResponse__Output, fetch: StatusFetcher): Promise<TreeNode> {
  const ref = referenceSeq(root);
  const answers = new Map<string, Fetched>([[rootAddress, { status: root }]]);
  // Listings in breadth-first order: [the lister's address, the follower as listed].
  const listings: [string, FollowerStatus__Output][] = [];
  let level: string[] = [rootAddress];
  for (let depth = 0; depth < MAX_DEPTH && level.length > 0; depth++) {
    const next: string[] = [];
    for (const parent of level) {
      for (const f of answers.get(parent)?.status?.followers ?? []) {
        listings.push([parent, f]);
        if (f.readAddress && !answers.has(f.readAddress) && !next.includes(f.readAddress) && answers.size + next.length < MAX_NODES) next.push(f.readAddress);
      }
    }
    const fetched = await Promise.all(
      next.map(async (address): Promise<Fetched> => {
        try {
          return { status: await fetch(address) };
        } catch (err) {
          const e = err as { message?: string; code?: string };
          return { error: `${e?.message ?? String(err)}${e?.code ? ` [${e.code}]` : ''}` };
        }
      }),
    );
    next.forEach((address, i) => answers.set(address, fetched[i]));
    level = next;
  }
  // One place per follower id: where it is connected, else where it was listed first.
  const placed = new Map<number, [string, FollowerStatus__Output]>();
  for (const l of listings) {
    const had = placed.get(l[1].followerId);
    if (!had || (!had[1].connected && l[1].connected)) placed.set(l[1].followerId, l);
  }
  const rootNode = selfNode(rootAddress, root, ref);
  const visited = new Set<string>([rootAddress]);
  const build = (node: TreeNode, address: string | null) => {
    if (address === null) return;
    for (const [parent, f] of placed.values()) {
      if (parent !== address) continue;
      const child = listedNode(f, f.readAddress ? answers.get(f.readAddress) : undefined, ref);
      node.children.push(child);
      if (child.address === null || !child.reachable) continue;
      // Listed under a node it is (indirectly) the upstream of: shown, not walked again.
      if (visited.has(child.address)) child.error ??= 'shown above: these nodes list each other as followers';
      else {
        visited.add(child.address);
        build(child, child.address);
      }
    }
    node.children.sort((a, b) => a.id - b.id);
  };
  build(rootNode, rootAddress);
  return rootNode;
}

/** Every node of a tree, depth first (the root first). */
export function treeNodes(node: TreeNode): TreeNode[] {
  return [node, ...node.children.flatMap(treeNodes)];
}

function nodeLine(n: TreeNode, isRoot: boolean): string {
  const parts: string[] = [];
  if (n.role === 'follower') {
    parts.push(`follower ${n.id} ${n.address ?? 'address-unknown'}`);
    if (!n.reachable) parts.push('UNREACHABLE');
    parts.push(n.state ?? 'unknown', `applied ${n.appliedSeq ?? 'unknown'}${n.reachable ? '' : ' (as its upstream last heard)'}`, `lag ${n.lagEntries ?? 'unknown'}`);
    if (n.reachable) parts.push(`upstream ${n.upstream ?? 'unknown'}`, `epoch ${n.epoch ?? 'unknown'}`);
  } else {
    parts.push(`${n.role} ${n.address ?? 'address-unknown'}`);
    if (n.id) parts.push(`node ${n.id}`);
    parts.push(`epoch ${n.epoch ?? 'unknown'}`, `lastSeq ${n.appliedSeq ?? 'unknown'}`);
    if (!isRoot && n.lagEntries !== null) parts.push(`lag ${n.lagEntries}`);
  }
  const line = parts.join('  ');
  if (!n.error) return line;
  return n.reachable ? `${line}  (${n.error})` : `${line}: ${n.error}`;
}

/**
 * The tree as text, one node per line, each follower under its upstream:
 *
 *   master 127.0.0.1:50051  epoch 2  lastSeq 36
 *   ├─ follower 1 127.0.0.1:7001  streaming  applied 36  lag 0  upstream 127.0.0.1:50051  epoch 2
 *   │  └─ follower 3 127.0.0.1:7003  streaming  applied 30  lag 6  upstream 127.0.0.1:7001  epoch 2
 *   └─ follower 2 127.0.0.1:7002  UNREACHABLE  streaming  applied 20 (as its upstream last heard)  lag 16: follower at ... is unavailable: ...
 */
export function treeText(root: TreeNode): string {
  const lines = [nodeLine(root, true)];
  const walk = (n: TreeNode, prefix: string) => {
    n.children.forEach((c, i) => {
      const last = i === n.children.length - 1;
      lines.push(`${prefix}${last ? '└─ ' : '├─ '}${nodeLine(c, false)}`);
      walk(c, `${prefix}${last ? '   ' : '│  '}`);
    });
  };
  walk(root, '');
  return lines.join('\n') + '\n';
}
