import assert from 'node:assert/strict';
import { PairHasher } from '../../src/storage/digest.js';
import type { MasterStore } from '../../src/storage/interfaces.js';
import { MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { prepareWrites, type PreparedWrites } from '../../src/wire/prepared-writes.js';

// ---- Writes and the data they leave -------------------------------------------------

export const T0 = 1_700_000_000_000;
export const MiB = 1024 * 1024;

export const put = (key: string | Buffer, value: string | Buffer): Mutation => ({ kind: MutationKind.PUT, key: Buffer.from(key), value: Buffer.from(value) });
export const del = (key: string | Buffer): Mutation => ({ kind: MutationKind.DELETE, key: Buffer.from(key) });

/** One request: each write becomes one entry (one seq). */
export function request(...writes: Mutation[][]): PreparedWrites {
  let bytes = 0;
  for (const w of writes) for (const m of w) bytes += m.key.length + (m.value?.length ?? 0);
  return prepareWrites(writes, bytes);
}

/**
 * The standard history: seq s puts k<s> = v<s>, deletes k<s-2>, and every fourth seq also
 * puts a key that is not valid UTF-8 (snapshot readers read those differently).
 */
export function writeOf(s: number): Mutation[] {
  const w = [put(`k${s}`, `v${s}`)];
  if (s > 2) w.push(del(`k${s - 2}`));
  if (s % 4 === 0) w.push(put(Buffer.from([0xff, 0xfe, s & 0xff, 0x00]), `b${s}`));
  return w;
}

/** The user data after seqs 1..n of the standard history, by key in hex. */
export function dataAfter(n: number): Map<string, Buffer> {
  const data = new Map<string, Buffer>();
  for (let s = 1; s <= n; s++) {
    for (const m of writeOf(s)) {
      if (m.kind === MutationKind.PUT) data.set(m.key.toString('hex'), m.value!);
      else data.delete(m.key.toString('hex'));
    }
  }
  return data;
}

/** The store digest (digest.ts framing) of user data, computed here from its definition. */
export function digestOf(data: Map<string, Buffer>): { digest: string; keys: bigint } {
  const hash = new PairHasher();
  const keys = [...data.keys()].map((k) => Buffer.from(k, 'hex')).sort(Buffer.compare);
  for (const k of keys) hash.update(k, data.get(k.toString('hex'))!);
  return { digest: hash.digest(), keys: BigInt(keys.length) };
}

/** Commits the next `count` seqs of the standard history in groups of 1, 3 and 2 entries (two requests when they fit). */
export async function commitHistory(master: MasterStore, count: number): Promise<void> {
  const sizes = [1, 3, 2];
  for (let done = 0, g = 0; done < count; g++) {
    const first = Number(master.log.lastSeq) + 1;
    const n = Math.min(sizes[g % sizes.length], count - done);
    const writes = Array.from({ length: n }, (_, i) => writeOf(first + i));
    const requests = n > 1 ? [request(...writes.slice(0, 1)), request(...writes.slice(1))] : [request(...writes)];
    const r = await master.commitGroup(requests, T0 + first, true);
    assert.deepEqual(r, { firstSeq: BigInt(first), lastSeq: BigInt(first + n - 1) });
    done += n;
  }
}

/** Every entry from..to of a log, read in pieces. */
export async function entries(master: MasterStore, from: bigint, to: bigint): Promise<Buffer[]> {
  const out: Buffer[] = [];
  while (from + BigInt(out.length) <= to) {
    const got = await master.log.read(from + BigInt(out.length), Number(to - from) + 1 - out.length, MiB);
    assert.ok(got.length > 0, `read(${from + BigInt(out.length)}) returned nothing below lastSeq`);
    out.push(...got);
  }
  return out;
}
