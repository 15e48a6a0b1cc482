import { decodeEntry, type DecodedEntry } from '../../src/wire/entry-codec.js';
import { dataRange, LOG_PREFIX_END, LOG_PREFIX_START, metaKey, MetaName } from '../../src/storage/layout.js';
import { openStore } from '../../src/storage/level-store.js';
import { splitChunk } from '../../src/storage/log-chunk.js';

export interface StoreContents {
  data: Map<string, string>;
  /** Follower: applied seq; master: undefined. */
  appliedSeq?: bigint;
}

/** Reads every user key and value of a stopped node's store (its active data generation). */
export async function readStore(dataDir: string): Promise<StoreContents & { gen: number; otherGenKeys: number }> {
  const db = await openStore(dataDir, { create: false });
  try {
    const gen = (await db.get(metaKey(MetaName.DATA_GEN)))?.readUInt32BE() ?? 0;
    const data = new Map<string, string>();
    for await (const [k, v] of db.iterator(dataRange(gen))) data.set(k.subarray(5).toString('latin1'), v.toString('latin1'));
    // Keys of any other generation: leftovers of an interrupted or replaced snapshot.
    let otherGenKeys = 0;
    for await (const k of db.keys({ gte: dataRange(0).gte, lt: dataRange(0xffffffff).lt })) if (k.readUInt32BE(1) !== gen) otherGenKeys++;
    const applied = await db.get(metaKey(MetaName.APPLIED_SEQ));
    return { data, appliedSeq: applied?.readBigUInt64BE(), gen, otherGenKeys };
  } finally {
    await db.close();
  }
}

/** Entry-by-entry comparison; returns a description of the first differences, or ''. */
export function diffStores(a: Map<string, string>, b: Map<string, string>, limit = 5): string {
  const out: string[] = [];
  for (const [k, v] of a) {
    if (out.length >= limit) break;
    if (!b.has(k)) out.push(`missing ${JSON.stringify(k)}`);
    else if (b.get(k) !== v) out.push(`different value at ${JSON.stringify(k)}`);
  }
  for (const k of b.keys()) {
    if (out.length >= limit) break;
    if (!a.has(k)) out.push(`extra ${JSON.stringify(k)}`);
  }
  return out.join('; ');
}

/** Number of entries that differ between two stores: missing, extra, or with another value. */
export function countDivergent(a: Map<string, string>, b: Map<string, string>): number {
  let n = 0;
  for (const [k, v] of a) if (b.get(k) !== v) n++;
  for (const k of b.keys()) if (!a.has(k)) n++;
  return n;
}

/** Every log entry still held by a stopped master's store (in its log chunks), decoded, by seq. */
export async function readLog(dataDir: string): Promise<Map<bigint, DecodedEntry>> {
  const db = await openStore(dataDir, { create: false });
  try {
    const log = new Map<bigint, DecodedEntry>();
    for await (const [, chunk] of db.iterator({ gte: LOG_PREFIX_START, lt: LOG_PREFIX_END })) {
      for (const v of splitChunk(chunk)) {
        const e = decodeEntry(v);
        log.set(e.seq, e);
      }
    }
    return log;
  } finally {
    await db.close();
  }
}

/** A stopped follower's applied seq, read straight from its store. */
export async function readAppliedSeq(dataDir: string): Promise<bigint> {
  const db = await openStore(dataDir, { create: false });
  try {
    return (await db.get(metaKey(MetaName.APPLIED_SEQ)))?.readBigUInt64BE() ?? 0n;
  } finally {
    await db.close();
  }
}
