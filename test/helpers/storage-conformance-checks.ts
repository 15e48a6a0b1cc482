import assert from 'node:assert/strict';
import { ErrorCode, type ReplicatorError } from '../../src/common/errors.js';
import type { DataSnapshot, MasterStore, ReplicaStore } from '../../src/storage/interfaces.js';
import { MiB } from './storage-conformance-fixtures.js';

// ---- Checks -------------------------------------------------------------------------

export async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal((err as ReplicatorError).code, code, `expected ${code}, got ${String(err)}`);
    return true;
  });
}

export async function digestNow(store: MasterStore | ReplicaStore): Promise<{ digest: string; keys: bigint; seq: bigint }> {
  const view = store.view();
  try {
    return { ...(await view.digest()), seq: await view.seq() };
  } finally {
    await view.close();
  }
}

export async function getNow(store: MasterStore | ReplicaStore, key: string | Buffer): Promise<string | undefined> {
  const view = store.view();
  try {
    return (await view.get(Buffer.from(key)))?.toString('latin1');
  } finally {
    await view.close();
  }
}

/** What a replica holds: its position and its data. */
export async function replicaState(replica: ReplicaStore) {
  const { seq: viewSeq, ...digest } = await digestNow(replica);
  return { position: { ...replica.position }, viewSeq, digest, dataGen: replica.dataGen };
}

export function logPositions(master: MasterStore) {
  const { historyId, epoch, firstSeq, lastSeq, lastChecksum, lastCommitTimeMs } = master.log;
  return { historyId: Buffer.from(historyId), epoch, firstSeq, lastSeq, lastChecksum, lastCommitTimeMs };
}

/** Every row of a snapshot as [user key, value], checking batch sizes and key order. */
export async function readRows(snap: DataSnapshot, pairs: number, bytes: number): Promise<[Buffer, Buffer][]> {
  const rows = snap.rows(pairs, bytes);
  const out: [Buffer, Buffer][] = [];
  try {
    for (;;) {
      const batch = await rows.next();
      if (batch.length === 0) return out;
      assert.ok(batch.length <= pairs, `a batch of ${batch.length} rows, asked for at most ${pairs}`);
      for (const [k, v] of batch) {
        const key = (typeof k === 'string' ? Buffer.from(k, 'utf8') : k).subarray(snap.keyOffset);
        if (out.length > 0) assert.ok(Buffer.compare(out[out.length - 1][0], key) < 0, 'snapshot rows out of key order');
        out.push([Buffer.from(key), Buffer.from(v)]);
      }
    }
  } finally {
    await rows.close();
  }
}

/** Writes every pair of a snapshot into generation gen of a replica, in chunks, as the snapshot receiver does. */
export async function writeSnapshot(replica: ReplicaStore, snap: DataSnapshot, gen: number, chunkPairs = 3): Promise<void> {
  const rows = snap.rows(chunkPairs, MiB);
  try {
    for (;;) {
      const batch = await rows.next();
      if (batch.length === 0) return;
      const pairs = batch.map(([k, v]) => ({ key: (typeof k === 'string' ? Buffer.from(k, 'utf8') : k).subarray(snap.keyOffset), value: v }));
      const staged = replica.stagePairs(gen, pairs);
      assert.deepEqual([staged.gen, staged.count], [gen, pairs.length]);
      await replica.writePairs(staged, 'store snapshot pairs');
    }
  } finally {
    await rows.close();
  }
}

export function positionOf(master: MasterStore, snap: DataSnapshot, gen: number) {
  return { gen, seq: snap.seq, checksum: snap.checksum, commitTimeMs: snap.commitTimeMs, historyId: master.log.historyId, epoch: master.log.epoch };
}

/** Installs a snapshot of the master into a replica as the snapshot receiver does; returns the replaced generation. */
export async function installSnapshot(replica: ReplicaStore, master: MasterStore, chunkPairs = 3): Promise<number> {
  const snap = await master.snapshot();
  try {
    const gen = (replica.dataGen + 1) >>> 0;
    await replica.clearGeneration(gen);
    await writeSnapshot(replica, snap, gen, chunkPairs);
    return await replica.switchToSnapshot(positionOf(master, snap, gen));
  } finally {
    await snap.close();
  }
}
