import { followerDataDir, masterDataDir } from '../common/config.js';
import type { StoreDigest } from '../storage/digest.js';
import { readEndpoint } from '../common/endpoint-file.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import type { DigestResponse__Output } from '../wire/generated/levelreplicator/v1/DigestResponse.js';
import type { GetResponse__Output } from '../wire/generated/levelreplicator/v1/GetResponse.js';
import { callUnary, storeClient, type Peer } from '../wire/rpc-client.js';
import type { ClientSecurity } from '../wire/security.js';
import { seqFromWire, seqToWire } from '../wire/seq.js';
import type { ReadableStore, StoreView } from '../storage/interfaces.js';
import { openStoreForReading } from '../storage/read-only-store.js';

/**
 * A node named on the command line: `master` or a follower id, found through its data
 * directory; or (address set) a node reached at that address only, wherever it runs.
 */
export interface NodeRef {
  role: 'master' | 'follower';
  followerId?: number;
  dataDir: string;
  address?: string;
}

export function nodeRef(name: 'master' | number, dataRoot: string, dataDir?: string): NodeRef {
  if (name === 'master') return { role: 'master', dataDir: dataDir ?? masterDataDir(dataRoot) };
  return { role: 'follower', followerId: name, dataDir: dataDir ?? followerDataDir(dataRoot, name) };
}

/**
 * A node at an address (--address): read over its Store service, TLS as the client options
 * say. Role master: the master found at that address (--master), so that errors name it so.
 */
export function addressRef(address: string, role: NodeRef['role'] = 'follower'): NodeRef {
  return { role, dataDir: '', address };
}

function label(node: NodeRef): string {
  if (node.address !== undefined) return node.role === 'master' ? `the master at ${node.address}` : `the node at ${node.address}`;
  return node.role === 'master' ? 'the master' : `follower ${node.followerId}`;
}

/**
 * Runs a read against a node: through its running process when it is up (found via the
 * endpoint file in its data directory), otherwise directly on its store. A store that is
 * locked while nothing answers means the node is running but unreachable. A node given
 * by address is only asked over the network.
 */
async function withNode<T>(
  node: NodeRef,
  security: ClientSecurity,
  online: (client: ReturnType<typeof storeClient>, peer: Peer) => Promise<T>,
  offline: (view: StoreView) => Promise<T>,
): Promise<T> {
  if (node.address !== undefined) {
    // No data directory here to fall back to: the node answers, or the error says why not.
    const client = storeClient(node.address, security);
    try {
      return await online(client, { role: node.role, address: node.address });
    } finally {
      client.close();
    }
  }
  const endpoint = readEndpoint(node.dataDir);
  let rpcFailure = '';
  if (endpoint) {
    const peer: Peer = { role: node.role, address: endpoint.address };
    const client = storeClient(endpoint.address, security, endpoint.tls ?? false);
    try {
      return await online(client, peer);
    } catch (err) {
      const down = isReplicatorError(err) && (err.code === ErrorCode.MASTER_UNAVAILABLE || err.code === ErrorCode.FOLLOWER_UNAVAILABLE);
      if (!down) throw err;
      rpcFailure = `: ${err.message}`;
      // Stale endpoint file (the process died): fall through to the store.
    } finally {
      client.close();
    }
  }
  let store: ReadableStore;
  try {
    store = await openStoreForReading(node.dataDir, node.role === 'master' ? 'master' : 'replica');
  } catch (err) {
    if (isReplicatorError(err, ErrorCode.STORE_NOT_FOUND)) {
      throw new ReplicatorError(ErrorCode.STORE_NOT_FOUND, `${label(node)} has no store in ${node.dataDir}`);
    }
    if (isReplicatorError(err, ErrorCode.DATA_DIR_LOCKED)) {
      const unavailable = node.role === 'master' ? ErrorCode.MASTER_UNAVAILABLE : ErrorCode.FOLLOWER_UNAVAILABLE;
      throw new ReplicatorError(unavailable, `${label(node)} is running (its store is locked) but does not answer at ${endpoint?.address ?? 'any published address'}${rpcFailure}`);
    }
    throw err;
  }
  try {
    // One view: the value (or digest) and the seq are one state's.
    const view = store.view();
    try {
      return await offline(view);
    } finally {
      await view.close();
    }
  } finally {
    await store.close();
  }
}

export interface ReadResult {
  value: Buffer | undefined;
  seq: bigint;
  via: 'rpc' | 'store';
}

/**
 * Reads key on a node. With minSeq > 0 (read-your-writes) a running node answers only
 * once it has applied minSeq, waiting up to about timeoutMs; a stopped node cannot
 * catch up, so its store answers only if it already holds minSeq. Otherwise: SEQ_NOT_APPLIED.
 */
export function readKey(node: NodeRef, key: Buffer, timeoutMs: number, security: ClientSecurity, minSeq = 0n): Promise<ReadResult> {
  return withNode<ReadResult>(
    node,
    security,
    async (client, peer) => {
      const res = await callUnary<GetResponse__Output>((o, cb) => client.Get({ key, minSeq: seqToWire(minSeq) }, o, cb), timeoutMs, peer);
      return { value: res.found ? res.value : undefined, seq: seqFromWire(res.appliedSeq), via: 'rpc' };
    },
    async (view) => {
      const seq = await view.seq();
      if (seq < minSeq) {
        throw new ReplicatorError(ErrorCode.SEQ_NOT_APPLIED, `${label(node)} is not running and has applied up to seq ${seq}, not seq ${minSeq}`);
      }
      return { value: await view.get(key), seq, via: 'store' };
    },
  );
}

export function digestNode(node: NodeRef, timeoutMs: number, security: ClientSecurity): Promise<StoreDigest & { via: 'rpc' | 'store' }> {
  return withNode<StoreDigest & { via: 'rpc' | 'store' }>(
    node,
    security,
    async (client, peer) => {
      const res = await callUnary<DigestResponse__Output>((o, cb) => client.Digest({}, o, cb), timeoutMs, peer);
      return { digest: res.digest, seq: seqFromWire(res.seq), keys: seqFromWire(res.keys), via: 'rpc' as const };
    },
    async (view) => {
      const { digest, keys } = await view.digest();
      return { digest, keys, seq: await view.seq(), via: 'store' as const };
    },
  );
}
