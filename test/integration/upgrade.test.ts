import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { encodeEntry, GENESIS_CHECKSUM, MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { dataKey, logKey, MASTER_DATA_GEN, metaKey, MetaName, u32 } from '../../src/storage/layout.js';
import { logDir } from '../../src/storage/level-master-store.js';
import { openStore, writeBatch, type BatchOp } from '../../src/storage/level-store.js';
import { chunkOf, MAX_CHUNK_ENTRIES } from '../../src/storage/log-chunk.js';
import { digests, readVia, status, waitConverged } from '../helpers/cluster.js';
import { diffStores, readLog, readStore } from '../helpers/stores.js';
import { runTool, ServerProcess, startFollower, startMaster, tempDir, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/** Entries of the hand-built old store: three chunks (1,000, 1,000 and 500 entries). */
const N = 2_500;

/**
 * Seq i's mutations: a put of k-i; every 7th also a second put (of m-i); every 100th also
 * deletes the key an earlier entry put (k-(i-50)), so the data is not just the last writes.
 */
function mutationsOf(i: number): Mutation[] {
  const put = (key: string, value: string): Mutation => ({ kind: MutationKind.PUT, key: Buffer.from(key), value: Buffer.from(value) });
  const m = [put(`k-${i}`, `value ${i} ${'x'.repeat(i % 40)}`)];
  if (i % 7 === 0) m.push(put(`m-${i}`, `second ${i}`));
  if (i % 100 === 0) m.push({ kind: MutationKind.DELETE, key: Buffer.from(`k-${i - 50}`) });
  return m;
}

/**
 * Builds a master data directory in the previous layout (0.1.x), as that master wrote it:
 * the data under 0x02 (generation 0), the log as chunk records under 0x01 (each under its
 * last seq, at most MAX_CHUNK_ENTRIES entries, checksums chained from genesis), the history
 * id and epoch as meta records, no log base (nothing trimmed) and no position meta.
 */
async function buildOldStore(dataDir: string, historyId: Buffer): Promise<{ data: Map<string, string>; checksums: number[] }> {
  const data = new Map<string, string>();
  const entries: Buffer[] = [];
  const checksums: number[] = [];
  let prev = GENESIS_CHECKSUM;
  const t0 = Date.now() - N * 1_000;
  for (let i = 1; i <= N; i++) {
    const mutations = mutationsOf(i);
    const e = encodeEntry(BigInt(i), t0 + i * 1_000, mutations, prev);
    prev = e.readUInt32BE(e.length - 4);
    entries.push(e);
    checksums.push(prev);
    for (const mu of mutations) {
      if (mu.kind === MutationKind.PUT) data.set(mu.key.toString(), mu.value!.toString());
      else data.delete(mu.key.toString());
    }
  }
  const db = await openStore(dataDir, { create: true });
  try {
    const ops: BatchOp[] = [];
    for (const [k, v] of data) ops.push({ type: 'put', key: dataKey(MASTER_DATA_GEN, Buffer.from(k)), value: Buffer.from(v) });
    for (let from = 0; from < N; from += MAX_CHUNK_ENTRIES) {
      const chunk = entries.slice(from, from + MAX_CHUNK_ENTRIES);
      ops.push({ type: 'put', key: logKey(BigInt(from + chunk.length)), value: chunkOf(chunk) });
    }
    ops.push({ type: 'put', key: metaKey(MetaName.HISTORY_ID), value: historyId });
    ops.push({ type: 'put', key: metaKey(MetaName.EPOCH), value: u32(1) });
    await writeBatch(db, ops, { sync: true });
  } finally {
    await db.close();
  }
  return { data, checksums };
}

describe('upgrading a master store from the previous layout (log inside LevelDB)', () => {
  const root = tempDir();
  const masterDir = path.join(root, 'master');
  const followerDir = path.join(root, 'follower-1');
  let master: MasterHandle | undefined;
  let f1: FollowerHandle | undefined;
  after(async () => {
    await f1?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('start-up refuses it with UPGRADE_REQUIRED; upgrade-store converts it once; the master then serves the same history', { timeout: 120_000 }, async () => {
    const historyId = crypto.randomBytes(16);
    const { data, checksums } = await buildOldStore(masterDir, historyId);
    assert.ok(data.size > 2_000 && data.size < N + N / 7, `${data.size} keys`);

    // (a) Refused at start, naming the command, and left as it was (no log directory made).
    const refused = new ServerProcess('master-server', ['--data-dir', masterDir, '--listen', '127.0.0.1:0']);
    assert.equal((await refused.exit).code, 4, refused.stderr);
    assert.match(refused.stderr, /UPGRADE_REQUIRED/);
    assert.ok(refused.stderr.includes(`replication-admin upgrade-store --data-dir ${masterDir}`), refused.stderr);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.equal(fs.existsSync(logDir(masterDir)), false);

    // (b) Converted offline, with a backup of the old store first; a second run has nothing to do.
    const up = await runTool('replication-admin', ['upgrade-store', '--data-dir', masterDir]);
    assert.equal(up.code, 0, up.stderr);
    const said = /^upgraded the store in (.+): (\d+) log entries moved to segment files \(lastSeq (\d+)\); the previous store is kept in (.+)\n$/.exec(up.stdout);
    assert.ok(said, up.stdout);
    assert.deepEqual([said[1], said[2], said[3]], [masterDir, String(N), String(N)]);
    const backupDir = said[4];
    assert.match(path.basename(backupDir), /^store\.backup-/);
    assert.ok(fs.existsSync(path.join(backupDir, 'CURRENT')), `a LevelDB directory at ${backupDir}`);
    const again = await runTool('replication-admin', ['upgrade-store', '--data-dir', masterDir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already has the current layout; nothing to do/);

    // The segment log holds the very same entries: seqs 1..N with the same chained checksums.
    const log = await readLog(masterDir);
    assert.equal(log.size, N);
    for (let i = 1; i <= N; i++) assert.equal(log.get(BigInt(i))?.checksum, checksums[i - 1], `seq ${i}`);

    // (c) The master starts on the same history at the same seq; a new follower converges.
    master = await startMaster(masterDir);
    const s = await status(master.address);
    assert.equal(s.lastSeq, String(N));
    assert.equal(s.historyId.toString('hex'), historyId.toString('hex'));
    f1 = await startFollower(1, followerDir, master.address);
    await waitConverged(master.address, [1]);
    assert.equal((await readVia(f1.readAddress, `k-${N}`)).value, data.get(`k-${N}`));
    assert.equal((await readVia(f1.readAddress, 'k-50')).value, undefined, 'deleted by entry 100');
    const rows = await digests(root, ['master', '1']);
    assert.equal(rows[0].digest, rows[1].digest);
    assert.equal(rows[0].keys, String(data.size));

    // Writes go on after the upgrade, at seq N + 1, and reach the follower.
    const push = await runTool('push-data', ['after', 'upgrade', '--master', master.address]);
    assert.equal(push.code, 0, push.stderr);
    data.set('after', 'upgrade');
    assert.equal(await waitConverged(master.address, [1]), BigInt(N + 1));
    assert.equal((await readVia(f1.readAddress, 'after')).value, 'upgrade');

    // Key by key, both stores hold exactly the expected data.
    assert.equal((await f1.proc.kill('SIGTERM')).code, 0);
    f1 = undefined;
    assert.equal((await master.proc.kill('SIGTERM')).code, 0);
    master = undefined;
    for (const dir of [masterDir, followerDir]) {
      const store = await readStore(dir);
      assert.equal(diffStores(data, store.data), '', dir);
    }
  });
});
