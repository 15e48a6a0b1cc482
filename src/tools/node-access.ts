import { followerDataDir, masterDataDir } from '../common/config.js';
import { digestData, type StoreDigest } from '../storage/digest.js';
import { readEndpoint } from '../common/endpoint-file.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { dataKey } from '../storage/layout.js';
import type { DigestResponse__Output } from '../wire/generated/levelreplicator/v1/DigestResponse.js';
import type { GetResponse__Output } from '../wire/generated/levelreplicator/v1/GetResponse.js';
import { callUnary, storeClient, type Peer } from '../wire/rpc-client.js';
import type { ClientSecurity } from '../wire/security.js';
import { seqFromWire, seqToWire } from '../wire/seq.js';
import { openStore, type Store, type StoreSnapshot } from '../storage/level-store.js';
import { appliedSeqAt, dataGenAt } from '../storage/level-store-view.js';
import { MASTER_DATA_GEN } from '../master/group-commit.js';
import { lastSeqAt } from '../storage/master-log.js';

/** A node named on the command line: `master` or a follower id. */
export interface NodeRef {
  role: 'master' | 'follower';
  followerId?: number;
  dataDir: string;
}

export function nodeRef(name: 'master' | number, dataRoot: string, dataDir?: string): NodeRef {
  if (name === 'master') return { role: 'master', dataDir: dataDir ?? masterDataDir(dataRoot) };
  return { role: 'follower', followerId: name, dataDir: dataDir ?? followerDataDir(dataRoot, name) };
}

function label(node: NodeRef): string {
  return node.role === 'master' ? 'the master' : `follower ${node.followerId}`;
}

/**
 * Runs a read against a node: through its running process when it is up (found via the
 * endpoint file in its data directory), otherwise directly on its store. A store that is
 * locked while nothing answers means the node is running but unreachable.
 */
async function withNode<T>(
  node: NodeRef,
  security: ClientSecurity,
  online: (client: ReturnType<typeof storeClient>, peer: Peer) => Promise<T>,
  offline: (db: Store, seqAt: (s: StoreSnapshot) => Promise<bigint>, genAt: (s: StoreSnapshot) => Promise<number>) => Promise<T>,
): Promise<T> {
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
  let db: Store;
  try {
    db = await openStore(node.dataDir, { create: false });
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
    return node.role === 'master'
      ? await offline(db, (s) => lastSeqAt(db, s), async () => MASTER_DATA_GEN)
      : await offline(db, (s) => appliedSeqAt(db, s), (s) => dataGenAt(db, s));
  } finally {
    await db.close();
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
    async (db, seqAt, genAt) => {
      const snapshot = db.snapshot();
      try {
        const seq = await seqAt(snapshot);
        if (seq < minSeq) {
          throw new ReplicatorError(ErrorCode.SEQ_NOT_APPLIED, `${label(node)} is not running and has applied up to seq ${seq}, not seq ${minSeq}`);
        }
        const value = await db.get(dataKey(await genAt(snapshot), key), { snapshot });
        return { value, seq, via: 'store' };
      } finally {
        await snapshot.close();
      }
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
    async (db, seqAt, genAt) => {
      const snapshot = db.snapshot();
      try {
        const { digest, keys } = await digestData(db, snapshot, await genAt(snapshot));
        return { digest, keys, seq: await seqAt(snapshot), via: 'store' as const };
      } finally {
        await snapshot.close();
      }
    },
  );
}
