import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { HISTORY_ID_KEY } from '../../src/storage/layout.js';
import { logDir, openMasterStore } from '../../src/storage/level-master-store.js';
import { openReplicaStore } from '../../src/storage/level-replica-store.js';
import { openStore } from '../../src/storage/level-store.js';
import type { SlotRecord } from '../../src/storage/interfaces.js';
import { firstSeqOfName, HEADER_BYTES } from '../../src/storage/segment-format.js';
import { commitHistory, dataAfter, digestOf, entries } from '../helpers/storage-conformance-fixtures.js';
import { readStore } from '../helpers/stores.js';
import { tempDir } from '../helpers/processes.js';

/**
 * Role changes on real directories (the conformance suite covers what both implementations
 * share): a master's directory whose LevelDB store is behind its log (the store is written
 * unsynced after the durable log, so a crash leaves it so) opened as a follower's, stores
 * of earlier versions, leftovers of other data generations, and a follower's log trims.
 */

const SMALL = 2_048;
const segments = (dir: string) => fs.readdirSync(logDir(dir)).filter((n) => firstSeqOfName(n) !== undefined).sort();

async function digestOfStore(store: { view(): { digest(): Promise<{ digest: string; keys: bigint }>; seq(): Promise<bigint>; close(): Promise<void> } }) {
  const view = store.view();
  try {
    return { ...(await view.digest()), seq: await view.seq() };
  } finally {
    await view.close();
  }
}

/**
 * A master directory with seqs 1..logSeq in its log and a LevelDB store that reflects only
 * 1..storeSeq; and the next 10 entries of its history (committed by a copy of it).
 */
async function masterBehindItsLog(storeSeq: number, logSeq: number): Promise<{ dir: string; historyId: Buffer; next: Buffer[] }> {
  const root = tempDir('lr-roles-');
  const dir = path.join(root, 'm');
  let store = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
  await commitHistory(store, storeSeq);
  await store.close();
  const saved = path.join(root, 'store-behind');
  fs.cpSync(path.join(dir, 'store'), saved, { recursive: true });
  store = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL });
  await commitHistory(store, logSeq - storeSeq);
  const historyId = Buffer.from(store.log.historyId);
  await store.close();
  const copy = path.join(root, 'copy');
  fs.cpSync(dir, copy, { recursive: true });
  const other = await openMasterStore(copy, { create: false });
  await commitHistory(other, 10);
  const next = await entries(other, BigInt(logSeq) + 1n, BigInt(logSeq) + 10n);
  await other.close();
  fs.rmSync(path.join(dir, 'store'), { recursive: true });
  fs.cpSync(saved, path.join(dir, 'store'), { recursive: true });
  return { dir, historyId, next };
}

describe('role changes on a data directory', () => {
  it("a master's store behind its log opens as a follower's that replays the log (nothing dropped), applies on, and opens as a master again", async () => {
    const { dir, historyId, next } = await masterBehindItsLog(50, 250);
    const replica = await openReplicaStore(dir, { create: false, sync: true, maxSegmentBytes: SMALL });
    assert.equal(replica.appliedSeq, 250n);
    assert.ok(replica.historyId.equals(historyId));
    assert.deepEqual([replica.log.firstSeq, replica.log.lastSeq], [1n, 250n], 'the log was kept whole');
    assert.deepEqual(await digestOfStore(replica), { ...digestOf(dataAfter(250)), seq: 250n });
    await replica.apply(next, historyId);
    assert.deepEqual(await digestOfStore(replica), { ...digestOf(dataAfter(260)), seq: 260n });
    await replica.close();
    const master = await openMasterStore(dir, { create: false, maxSegmentBytes: SMALL });
    assert.deepEqual([master.log.firstSeq, master.log.lastSeq], [1n, 260n]);
    assert.ok(master.log.historyId.equals(historyId));
    await commitHistory(master, 5);
    assert.deepEqual(await digestOfStore(master), { ...digestOf(dataAfter(265)), seq: 265n });
    await master.close();
  });

  it('a master store of an earlier version (no history id recorded) behind its log opens as a follower that takes the log\'s history', async () => {
    const { dir, historyId } = await masterBehindItsLog(20, 80);
    const db = await openStore(dir, { create: false });
    await db.del(HISTORY_ID_KEY);
    await db.close();
    const replica = await openReplicaStore(dir, { create: false, sync: false });
    assert.equal(replica.appliedSeq, 80n);
    assert.ok(replica.historyId.equals(historyId), 'the history was not taken from the log');
    assert.ok(replica.log.historyId.equals(historyId));
    assert.deepEqual(await digestOfStore(replica), { ...digestOf(dataAfter(80)), seq: 80n });
    await replica.close();
    const db2 = await openStore(dir, { create: false });
    assert.ok((await db2.get(HISTORY_ID_KEY))?.equals(historyId), 'the store records it now');
    await db2.close();
  });

  it("a repaired master's new history is what its directory opens with as a follower", async () => {
    const dir = path.join(tempDir('lr-roles-'), 'm');
    let master = await openMasterStore(dir, { create: true, maxSegmentBytes: SMALL });
    await commitHistory(master, 120);
    await master.close();
    // Damage inside the second segment: --repair-log restarts the log under a new history.
    const file = path.join(logDir(dir), segments(dir)[1]);
    const bytes = fs.readFileSync(file);
    bytes[HEADER_BYTES + 2 + 12] ^= 0x01;
    fs.writeFileSync(file, bytes);
    master = await openMasterStore(dir, { create: false, repairLog: true, maxSegmentBytes: SMALL });
    const repaired = Buffer.from(master.log.historyId);
    await master.close();
    const replica = await openReplicaStore(dir, { create: false, sync: true });
    assert.ok(replica.historyId.equals(repaired));
    assert.deepEqual([replica.appliedSeq, replica.log.lastSeq], [120n, 120n]);
    await replica.close();
  });

  it('opening a follower\'s directory as a master deletes data of the other generations', async () => {
    const dir = path.join(tempDir('lr-roles-'), 'f');
    const replica = await openReplicaStore(dir, { create: true, sync: true });
    await replica.writePairs(replica.stagePairs(3, [{ key: Buffer.from('left'), value: Buffer.from('over') }]), 'store pairs');
    await replica.close();
    // The follower's own open would delete them; the master's must too (it never reads them, and they would never go).
    const master = await openMasterStore(dir, { create: false });
    await master.close();
    const s = await readStore(dir);
    assert.deepEqual([s.gen, s.otherGenKeys, s.data.size], [0, 0, 0]);
  });

  it("a follower's log keeps its newest entries, and a trim given slots persists them (before deleting segments too)", async () => {
    const root = tempDir('lr-roles-');
    const source = await openMasterStore(path.join(root, 'm'), { create: true });
    await commitHistory(source, 300);
    const all = await entries(source, 1n, 300n);
    const dir = path.join(root, 'f');
    const replica = await openReplicaStore(dir, { create: true, sync: true, maxSegmentBytes: SMALL, retainEntries: 50n });
    for (let i = 0; i < 200; i += 20) await replica.apply(all.slice(i, i + 20), source.log.historyId);
    assert.ok(replica.log.firstSeq > 1n && replica.log.firstSeq <= 151n, `firstSeq ${replica.log.firstSeq}`);
    const before = segments(dir).length;
    const slots: SlotRecord[] = [{ followerId: 7, appliedSeq: 190n, lost: false }];
    assert.equal(await replica.log.trimTo(190n, 1000n, slots), 190n);
    assert.ok(segments(dir).length < before, 'no segment was deleted');
    assert.deepEqual(await replica.loadSlots(), slots);
    await replica.apply(all.slice(200, 300), source.log.historyId);
    await replica.close();
    await source.close();
    const again = await openReplicaStore(dir, { create: false, sync: true, maxSegmentBytes: SMALL });
    assert.deepEqual(await again.loadSlots(), slots);
    assert.equal(again.appliedSeq, 300n);
    await again.close();
  });
});
