import type { GetResponse__Output } from '../../wire/generated/levelreplicator/v1/GetResponse.js';
import { ErrorCode, isReplicatorError } from '../../common/errors.js';
import { callUnary, storeClient } from '../../wire/rpc-client.js';
import { Cluster } from '../harness/cluster.js';
import { mergeStart, type NodeStart } from '../harness/start-node.js';

/** One waiting Get's deadline (the follower caps its wait below it). */
const WAIT_CALL_MS = 30_000;
/** How long the bench waits for a server's log line (ready, streaming, a snapshot's start): it may open a store of N entries. */
export const LOG_WAIT_MS = 120_000;

export interface NodeSettings {
  /** Extra node flags for the server processes (e.g. --cpu-prof). */
  nodeArgs: string[];
  sync: boolean;
  /** A command that runs node for the servers (e.g. chrt -f 1): it must exec it, keeping the pid. */
  launcher?: string[];
}

export function syncFlag(sync: boolean): string {
  return sync ? '--sync' : '--no-sync';
}

/**
 * The benchmark's servers, in dir (the harness's cluster): every node runs with the
 * settings' node flags, launcher and durability (the followers' can differ:
 * followerSync), logging at info; master and follower add to the master's or the
 * followers' start (a trace file, other node flags).
 */
export function benchCluster(dir: string, s: NodeSettings, extra: { master?: NodeStart; follower?: NodeStart; followerSync?: boolean } = {}): Cluster {
  return new Cluster(dir, {
    node: { logLevel: 'info', nodeArgs: s.nodeArgs, launcher: s.launcher, readyTimeoutMs: LOG_WAIT_MS },
    master: mergeStart({ args: [syncFlag(s.sync)] }, extra.master),
    follower: mergeStart({ args: [syncFlag(extra.followerSync ?? s.sync)] }, extra.follower),
  });
}

/**
 * Resolves to the time (performance.now(), ms) each follower applied at least seq. Each
 * follower is asked once, with a Get carrying min_seq = seq, which it answers as soon as it
 * has applied seq (read-your-writes): no polling, whose calls (a grpc-js unary call costs
 * about 1 ms of CPU on the two sides) would compete with the load being measured. A Get
 * that reaches its wait budget first (SEQ_NOT_APPLIED) is asked again.
 */
export async function waitApplied(readAddresses: readonly string[], seq: number, timeoutMs = 1_800_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const clients = readAddresses.map((a) => storeClient(a));
  try {
    return await Promise.all(
      readAddresses.map(async (address, i) => {
        for (;;) {
          try {
            const res = await callUnary<GetResponse__Output>(
              (o, cb) => clients[i].Get({ key: Buffer.from('-'), minSeq: String(seq) }, o, cb),
              Math.max(1_000, Math.min(WAIT_CALL_MS, deadline - Date.now())),
              { role: 'follower', address },
            );
            const at = performance.now();
            if (Number(res.appliedSeq) < seq) throw new Error(`follower answered at seq ${res.appliedSeq}, below min_seq ${seq}`);
            return at;
          } catch (err) {
            if (!(isReplicatorError(err) && err.code === ErrorCode.SEQ_NOT_APPLIED)) throw err;
            if (Date.now() > deadline) throw new Error(`a follower did not apply seq ${seq} within ${timeoutMs} ms`);
          }
        }
      }),
    );
  } finally {
    for (const c of clients) c.close();
  }
}
