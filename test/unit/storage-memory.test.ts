import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { ErrorCode, type ReplicatorError } from '../../src/common/errors.js';
import { dataKey, logKey } from '../../src/storage/layout.js';
import { MemoryDisk } from '../../src/storage/memory-disk.js';
import { openMemoryMasterStore } from '../../src/storage/memory-master-store.js';
import { openMemoryReplicaStore } from '../../src/storage/memory-replica-store.js';
import { MutationKind } from '../../src/wire/entry-codec.js';
import { prepareWrites } from '../../src/wire/prepared-writes.js';
import { storageConformance } from '../helpers/storage-conformance.js';

/** The storage contract against the memory stores: a node is a MemoryDisk. */
for (const sync of [true, false]) {
  storageConformance(`memory (replica sync ${sync})`, {
    async newNode() {
      const disk = new MemoryDisk();
      return {
        openMaster: () => openMemoryMasterStore(disk, { create: true }),
        openReplica: () => openMemoryReplicaStore(disk, { create: true, sync }),
        failNextWrite: () => disk.failWrites(),
        dispose: async () => {},
      };
    },
  });
}

const T0 = 1_700_000_000_000;
/** One group of one entry putting key = value. */
const group = (key: string, value: string) => [prepareWrites([[{ kind: MutationKind.PUT, key: Buffer.from(key), value: Buffer.from(value) }]], 0)];
const code = (c: ErrorCode) => (err: unknown) => (err as ReplicatorError).code === c;

/** A master on its own disk with seqs 1..n (n puts k<i> = v<i>), and its entries. */
async function masterWith(n: number) {
  const disk = new MemoryDisk();
  const master = await openMemoryMasterStore(disk, { create: true });
  for (let i = 1; i <= n; i++) await master.commitGroup(group(`k${i}`, `v${i}`), T0 + i, true);
  return { disk, master, log: n > 0 ? await master.log.read(1n, n, Infinity) : [], historyId: master.log.historyId };
}

describe('memory disk', () => {
  it('opens for one store at a time, and a blank disk only with create', async () => {
    const disk = new MemoryDisk();
    await assert.rejects(openMemoryMasterStore(disk, { create: false }), code(ErrorCode.STORE_NOT_FOUND));
    const master = await openMemoryMasterStore(disk, { create: true });
    await assert.rejects(openMemoryMasterStore(disk, { create: true }), code(ErrorCode.DATA_DIR_LOCKED));
    await master.close();
    await (await openMemoryMasterStore(disk, { create: false })).close();
  });

  it('crash() loses the writes since the last synced one; a synced write makes the earlier ones durable', async () => {
    const { disk, master } = await masterWith(0);
    await master.commitGroup(group('a', '1'), T0, false);
    await master.commitGroup(group('b', '2'), T0, true); // makes seq 1 durable too
    await master.commitGroup(group('c', '3'), T0, false);
    const history = master.log.historyId;
    disk.crash();
    await assert.rejects(master.commitGroup(group('d', '4'), T0, true), code(ErrorCode.STORE_FAILED), 'the crashed store still writes');
    const again = await openMemoryMasterStore(disk, { create: false });
    assert.equal(again.log.lastSeq, 2n);
    assert.ok(again.log.historyId.equals(history));
    const view = again.view();
    assert.deepEqual([(await view.get(Buffer.from('a')))?.toString(), (await view.get(Buffer.from('b')))?.toString(), await view.get(Buffer.from('c'))], ['1', '2', undefined]);
    await view.close();
  });

  it("crash() loses a replica's unsynced applies whole: position and data together", async () => {
    const { log, historyId } = await masterWith(4);
    const disk = new MemoryDisk();
    const synced = await openMemoryReplicaStore(disk, { create: true, sync: true });
    await synced.apply(log.slice(0, 2), historyId);
    await synced.close();
    const replica = await openMemoryReplicaStore(disk, { create: false, sync: false });
    await replica.apply(log.slice(2, 3), historyId);
    await replica.apply(log.slice(3, 4), historyId);
    disk.crash();
    const again = await openMemoryReplicaStore(disk, { create: false, sync: false });
    assert.equal(again.appliedSeq, 2n);
    assert.deepEqual([again.log.lastSeq, again.log.lastChecksum], [2n, again.appliedChecksum], 'the log went with its applies');
    const view = again.view();
    assert.deepEqual([(await view.get(Buffer.from('k2')))?.toString(), await view.get(Buffer.from('k3')), await view.seq()], ['v2', undefined, 2n]);
    await view.close();
  });

  it('a fault with a predicate fails only the writes it matches, as often as asked', async () => {
    const { log, historyId } = await masterWith(3);
    const disk = new MemoryDisk();
    const replica = await openMemoryReplicaStore(disk, { create: true, sync: true });
    disk.failWrites({ match: (w) => w.kind === 'switch', times: 2 });
    await replica.apply(log.slice(0, 1), historyId);
    const pos = { gen: 1, seq: 1n, checksum: replica.appliedChecksum, commitTimeMs: 0, historyId, epoch: 1 };
    await assert.rejects(replica.switchToSnapshot(pos), code(ErrorCode.STORE_FAILED));
    await assert.rejects(replica.switchToSnapshot(pos), code(ErrorCode.STORE_FAILED));
    assert.equal(await replica.switchToSnapshot(pos), 0);
    await replica.apply(log.slice(1, 3), historyId);
    assert.equal(replica.appliedSeq, 3n);
  });

  it('a write that landed and still failed is found by ensureWritable, which reads the position back', async () => {
    const { log, historyId } = await masterWith(3);
    const disk = new MemoryDisk();
    const replica = await openMemoryReplicaStore(disk, { create: true, sync: true });
    disk.failWrites({ landed: true });
    await assert.rejects(replica.apply(log, historyId), code(ErrorCode.STORE_FAILED));
    assert.equal(replica.appliedSeq, 0n);
    await replica.ensureWritable();
    assert.equal(replica.appliedSeq, 3n, 'the landed batch was not read back');
    assert.equal(replica.progress.position, 3n);
    await assert.rejects(replica.apply(log.slice(2), historyId), code(ErrorCode.SEQ_GAP), 'applied twice');
  });

  it('ensureWritable fails with STORE_FAILED while the reopen fails, then writes go on', async () => {
    const { log, historyId } = await masterWith(2);
    const disk = new MemoryDisk();
    const replica = await openMemoryReplicaStore(disk, { create: true, sync: true });
    disk.failWrites();
    disk.failReopens(2);
    await assert.rejects(replica.apply(log.slice(0, 1), historyId), code(ErrorCode.STORE_FAILED));
    await assert.rejects(replica.ensureWritable(), code(ErrorCode.STORE_FAILED));
    await assert.rejects(replica.apply(log.slice(0, 1), historyId), code(ErrorCode.STORE_FAILED));
    await replica.apply(log, historyId);
    assert.equal(replica.appliedSeq, 2n);
  });

  it('a failed master commit stops the store: later commits are refused', async () => {
    const { disk, master } = await masterWith(1);
    disk.failWrites();
    await assert.rejects(master.commitGroup(group('a', '1'), T0, true), code(ErrorCode.STORE_FAILED));
    await assert.rejects(master.commitGroup(group('a', '1'), T0, true), code(ErrorCode.STORE_FAILED));
    assert.equal(master.log.lastSeq, 1n);
  });

  it('a corrupt log entry stops the master from opening; repairLog drops the log from it and starts a new history', async () => {
    const { disk, master, historyId } = await masterWith(5);
    await master.close();
    const entry = disk.peek(logKey(4n))!;
    entry[entry.length - 6] ^= 0x01;
    disk.poke(logKey(4n), entry);
    await assert.rejects(openMemoryMasterStore(disk, { create: false }), (err: unknown) => code(ErrorCode.CORRUPT_ENTRY)(err) && /log entry 4 is corrupt/.test(String(err)));
    const repaired = await openMemoryMasterStore(disk, { create: false, repairLog: true });
    assert.equal(repaired.log.lastSeq, 3n);
    assert.ok(!repaired.log.historyId.equals(historyId));
    assert.equal(disk.peek(logKey(5n)), undefined);
    assert.deepEqual(await repaired.commitGroup(group('x', 'y'), T0, true), { firstSeq: 4n, lastSeq: 4n });
    await repaired.close();
    assert.equal((await openMemoryMasterStore(disk, { create: false })).log.lastSeq, 4n);
  });

  it('a log with a missing entry is corrupt too', async () => {
    const { disk, master } = await masterWith(4);
    await master.close();
    disk.poke(logKey(2n), undefined);
    await assert.rejects(openMemoryMasterStore(disk, { create: false }), code(ErrorCode.CORRUPT_ENTRY));
  });

  it('opening a replica deletes what an interrupted snapshot left in other generations', async () => {
    const disk = new MemoryDisk();
    const replica = await openMemoryReplicaStore(disk, { create: true, sync: true });
    const key = crypto.randomBytes(8);
    await replica.writePairs(replica.stagePairs(1, [{ key, value: Buffer.from('x') }]), 'store pairs');
    await replica.close();
    assert.ok(disk.peek(dataKey(1, key)));
    await (await openMemoryReplicaStore(disk, { create: false, sync: true })).close();
    assert.equal(disk.peek(dataKey(1, key)), undefined);
  });

  it("opening a follower's disk as a master deletes data of the other generations", async () => {
    const disk = new MemoryDisk();
    const replica = await openMemoryReplicaStore(disk, { create: true, sync: true });
    const key = crypto.randomBytes(8);
    await replica.writePairs(replica.stagePairs(3, [{ key, value: Buffer.from('x') }]), 'store pairs');
    await replica.close();
    await (await openMemoryMasterStore(disk, { create: false })).close();
    assert.equal(disk.peek(dataKey(3, key)), undefined);
  });

  it("a follower's log keeps about its newest retainEntries entries", async () => {
    const { log, historyId } = await masterWith(100);
    const replica = await openMemoryReplicaStore(new MemoryDisk(), { create: true, sync: true, retainEntries: 32n });
    for (let i = 0; i < 100; i += 10) await replica.apply(log.slice(i, i + 10), historyId);
    assert.ok(replica.log.firstSeq > 1n && replica.log.firstSeq <= 69n, `firstSeq ${replica.log.firstSeq}`);
    assert.equal(replica.log.lastSeq, 100n);
    assert.ok((await replica.log.read(replica.log.firstSeq, 200, Infinity)).length === Number(100n - replica.log.firstSeq + 1n));
  });

  it('refuses snapshot pairs out of key order or into the active generation', async () => {
    const replica = await openMemoryReplicaStore(new MemoryDisk(), { create: true, sync: true });
    const kv = (k: string) => ({ key: Buffer.from(k), value: Buffer.from('v') });
    assert.throws(() => replica.stagePairs(1, [kv('b'), kv('a')]), code(ErrorCode.INTERNAL));
    assert.throws(() => replica.stagePairs(1, [kv('a'), kv('a')]), code(ErrorCode.INTERNAL));
    assert.throws(() => replica.stagePairs(0, [kv('a')]), code(ErrorCode.INTERNAL));
  });
});
