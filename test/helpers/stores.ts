import { openReplicaStore } from '../../src/storage/level-replica-store.js';
import fs from 'node:fs';
import path from 'node:path';
import { decodeEntry, type DecodedEntry } from '../../src/wire/entry-codec.js';
import { dataRange, metaKey, MetaName } from '../../src/storage/layout.js';
import { logDir, openMasterStore } from '../../src/storage/level-master-store.js';
import { firstSeqOfName } from '../../src/storage/segment-format.js';
import { openStore } from '../../src/storage/level-store.js';

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

/**
 * Every log entry a stopped master's log holds (its segment files, firstSeq..lastSeq),
 * decoded, by seq. Opening the store verifies the log and brings the store up to it.
 */
export async function readLog(dataDir: string): Promise<Map<bigint, DecodedEntry>> {
  const store = await openMasterStore(dataDir, { create: false });
  try {
    const { log } = store;
    const entries = new Map<bigint, DecodedEntry>();
    for (let seq = log.firstSeq; seq <= log.lastSeq; ) {
      const run = await log.read(seq, 10_000, 16 * 1024 * 1024);
      if (run.length === 0) throw new Error(`the log of ${dataDir} returned nothing at seq ${seq} (it ends at ${log.lastSeq})`);
      for (const v of run) {
        const e = decodeEntry(v);
        entries.set(e.seq, e);
      }
      seq += BigInt(run.length);
    }
    return entries;
  } finally {
    await store.close();
  }
}

/** Every place these bytes occur in the segment files of a node's log: file path and offset. */
export function findInSegments(dataDir: string, bytes: Buffer): { file: string; at: number }[] {
  const dir = logDir(dataDir);
  const hits: { file: string; at: number }[] = [];
  for (const name of fs.readdirSync(dir).filter((n) => firstSeqOfName(n) !== undefined)) {
    const file = path.join(dir, name);
    const content = fs.readFileSync(file);
    for (let at = content.indexOf(bytes); at >= 0; at = content.indexOf(bytes, at + 1)) hits.push({ file, at });
  }
  return hits;
}

/** Flips the bits of `mask` in the byte at offset `at` of a file, in place (behind any reader's back). */
export function flipBits(file: string, at: number, mask: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    if (fs.readSync(fd, b, 0, 1, at) !== 1) throw new Error(`${file} has no byte at offset ${at}`);
    b[0] ^= mask;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

/** A stopped follower's applied seq: where it resumes when restarted. */
export async function readAppliedSeq(dataDir: string): Promise<bigint> {
  // Opened as the follower itself opens it: entries its own log holds past the store's
  // seq (appended, then killed before the store write) are replayed, so this is the seq a
  // restart resumes after.
  const store = await openReplicaStore(dataDir, { create: false, sync: true });
  try {
    return store.appliedSeq;
  } finally {
    await store.close();
  }
}
