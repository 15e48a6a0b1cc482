import { callUnary, masterClient, storeClient } from '../../src/wire/rpc-client.js';
import type { DigestResponse__Output } from '../../src/wire/generated/levelreplicator/v1/DigestResponse.js';
import type { GetResponse__Output } from '../../src/wire/generated/levelreplicator/v1/GetResponse.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import { runTool, waitFor } from './processes.js';

export async function status(address: string): Promise<StatusResponse__Output> {
  const client = masterClient(address);
  try {
    return await callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), 5_000, { role: 'master', address });
  } finally {
    client.close();
  }
}

/** Polls until every listed follower is connected and has applied the master's last seq. */
export async function waitConverged(address: string, ids: number[], timeoutMs = 90_000): Promise<bigint> {
  const s = await waitFor(
    async () => {
      const s = await status(address);
      const done = ids.every((id) => s.followers.some((f) => f.followerId === id && f.connected && f.appliedSeq === s.lastSeq));
      return done ? s : undefined;
    },
    `followers ${ids.join(', ')} to apply everything`,
    timeoutMs,
    100,
  );
  return BigInt(s.lastSeq);
}

export interface DigestRow {
  node: string;
  digest: string;
  seq: string;
  keys: string;
  via: string;
}

export async function digests(dataRoot: string, nodes: string[]): Promise<DigestRow[]> {
  const res = await runTool('store-digest', [...nodes, '--json', '--data-root', dataRoot]);
  if (res.code !== 0) throw new Error(`store-digest failed: ${res.stderr}`);
  return res.stdout.trim().split('\n').map((l) => JSON.parse(l) as DigestRow);
}

/** A Get on a node's read service, in process (fast enough to poll in a tight loop). */
export async function readVia(address: string, key: string): Promise<{ value: string | undefined; seq: bigint }> {
  const client = storeClient(address);
  try {
    const res = await callUnary<GetResponse__Output>((o, cb) => client.Get({ key: Buffer.from(key) }, o, cb), 5_000, { role: 'follower', address });
    return { value: res.found ? res.value.toString() : undefined, seq: BigInt(res.appliedSeq) };
  } finally {
    client.close();
  }
}

/** The Digest of the node serving reads at address (a master serves reads on its own address), named `node`. */
export async function digestOf(node: string, address: string): Promise<{ node: string; digest: string; seq: bigint }> {
  const client = storeClient(address);
  try {
    const d = await callUnary<DigestResponse__Output>((o, cb) => client.Digest({}, o, cb), 60_000, { role: 'follower', address });
    return { node, digest: d.digest, seq: BigInt(d.seq) };
  } finally {
    client.close();
  }
}

/** key<TAB>value lines for push-data --stdin. */
export function tsv(count: number, key: (i: number) => string, value: (i: number) => string): string {
  let out = '';
  for (let i = 0; i < count; i++) out += `${key(i)}\t${value(i)}\n`;
  return out;
}
