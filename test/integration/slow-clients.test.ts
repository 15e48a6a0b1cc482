import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import type { FollowerStatus__Output } from '../../src/wire/generated/levelreplicator/v1/FollowerStatus.js';
import type { SubscribeResponse__Output } from '../../src/wire/generated/levelreplicator/v1/SubscribeResponse.js';
import type { StreamStart__Output } from '../../src/wire/generated/levelreplicator/v1/StreamStart.js';
import { status } from '../helpers/cluster.js';
import { decodeMasterResponse, encodeMaster, MASTER, RawClient } from '../helpers/raw-client.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/** Resident memory (MiB) of a process now, and its peak so far. Linux only, as is CI. */
function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]);
  return { rssMb: kb('VmRSS') >> 10, peakMb: kb('VmHWM') >> 10 };
}

/** Starts the peak (VmHWM) over from the current RSS, so it measures only what follows; a no-op where the kernel does not allow it. */
function resetPeak(pid: number): void {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Then the peak since the process started is used: only a stricter bound.
  }
}

const LOG_MB = 128; // twice the master's in-memory tail (64 MiB): a stream that buffered it all would be plain to see
const SLOW_CLIENTS = 8;
/**
 * A correctness bound, not a timing one. Each stalled stream may hold up to 4 MiB of
 * unsent payload (MAX_UNSENT_BYTES: snapshot pairs or log entries) plus one message:
 * about 40 MiB for eight. Measured with stalled snapshot streams: +55 to +95 MiB.
 * Without backpressure, stalled snapshot streams buffer all they are owed: +1 GiB.
 */
const MAX_GROWTH_MB = 250;
/**
 * Log streams: the master also commits the 128 MiB meanwhile, and each stalled client's
 * grpc-js read-ahead (16 messages, 1 MiB each here) takes 15 entries before the stream
 * stalls; every entry sent is encoded and framed per stream, so peak RSS counts copies
 * that are garbage but not yet collected. Measured on a 2-CPU machine: +150 to +645 MiB,
 * the same before and after the promotion work, set by when V8 collects. Memory alone
 * cannot tell backpressure here (without it: +95 to +220 MiB), so this bound only catches
 * a leak of the whole owed log (8 x 128 MiB, twice), and the test checks how far the
 * master got in each stream, which is the backpressure proof.
 */
const MAX_LOG_GROWTH_MB = 900;

/** Writes mb values of 1 MiB each, in requests of 8. */
async function writeMiB(address: string, prefix: string, mb: number): Promise<void> {
  const writer = new RawClient(address);
  const value = Buffer.alloc(1024 * 1024, 7);
  try {
    for (let i = 0; i < mb; i += 8) {
      const writes = Array.from({ length: 8 }, (_, j) => ({ mutations: [{ kind: 'PUT', key: Buffer.from(`${prefix}${i + j}`), value }] }));
      const { err } = await writer.unary(MASTER.Write, encodeMaster('Write', { writes }));
      assert.equal(err, null);
    }
  } finally {
    writer.close();
  }
}

/**
 * SLOW_CLIENTS raw subscribers that take the first message (the StreamStart) and never
 * read again: the transport's flow-control window fills and the master's writes to the
 * stream stop being taken. Resolves with each one's StreamStart.
 */
async function stalledSubscribers(address: string, clients: RawClient[], request: (i: number) => object): Promise<StreamStart__Output[]> {
  const starts: StreamStart__Output[] = [];
  for (let i = 0; i < SLOW_CLIENTS; i++) {
    const client = new RawClient(address);
    clients.push(client);
    const call = client.client.makeServerStreamRequest<Buffer, Buffer>(MASTER.Subscribe, (b) => b, (b) => b, encodeMaster('Subscribe', request(i)), {});
    call.once('data', (msg: Buffer) => {
      call.pause();
      starts.push((decodeMasterResponse('Subscribe', msg) as SubscribeResponse__Output).start!);
    });
    call.on('error', (_err: grpc.ServiceError) => {});
  }
  await waitFor(() => starts.length === SLOW_CLIENTS, 'every slow client to get its stream');
  return starts;
}

/** The master's view of each slow client: still connected (the master stalled its stream, it did not drop it). */
async function slowClients(address: string, ids: number[]): Promise<FollowerStatus__Output[]> {
  const s = await status(address);
  return ids.map((id) => {
    const f = s.followers.find((x) => x.followerId === id);
    assert.ok(f?.connected, `slow client ${id} is still connected`);
    return f;
  });
}

function checkGrowth(pid: number, before: { rssMb: number }, what: string, bound: number): void {
  const now = memory(pid);
  const growth = now.peakMb - before.rssMb;
  process.stdout.write(`# master memory (${what}): ${before.rssMb} MiB before, peak ${now.peakMb} MiB after (+${growth} MiB)\n`);
  assert.ok(growth < bound, `master memory grew by ${growth} MiB with ${SLOW_CLIENTS} stalled ${what} (bound ${bound})`);
}

describe('slow clients that never read their stream', () => {
  const slow: RawClient[] = [];
  const masters: MasterHandle[] = [];
  const followers: FollowerHandle[] = [];
  after(async () => {
    for (const c of slow) c.close();
    for (const f of followers) await f.proc.kill('SIGKILL');
    for (const m of masters) await m.proc.kill('SIGKILL');
  });

  it('stalled snapshot streams keep the master\'s memory bounded while it goes on serving a real follower', async () => {
    const root = tempDir();
    const master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--no-sync']);
    masters.push(master);
    await writeMiB(master.address, 'k', LOG_MB);
    const before = memory(master.proc.pid);
    resetPeak(master.proc.pid);

    // Snapshot case: each subscribes as a new follower (seq 1, checksum 0) of a master
    // that has data, so it is sent a snapshot of all 128 MiB; it stalls in the snapshot.
    const ids = Array.from({ length: SLOW_CLIENTS }, (_, i) => 100 + i);
    const starts = await stalledSubscribers(master.address, slow, (i) => ({ followerId: ids[i], fromSeq: '1', prevChecksum: 0 }));
    for (const start of starts) assert.ok(start.snapshot, 'a snapshot stream');

    // Meanwhile a real follower gets its own snapshot and the log.
    const follower = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--no-sync']);
    followers.push(follower);
    await waitFor(
      async () => (await runTool('get-data', ['1', `k${LOG_MB - 1}`, '--data-root', root])).code === 0,
      'the follower to replicate the whole store',
      120_000,
      200,
    );
    checkGrowth(master.proc.pid, before, 'snapshot streams', MAX_GROWTH_MB);
    for (const f of await slowClients(master.address, ids)) assert.ok(f.snapshotting, `slow client ${f.followerId} is still in its snapshot`);
    assert.equal(master.proc.exited, false);
    await follower.proc.kill('SIGKILL');
    await master.proc.kill('SIGKILL');
  });

  it('stalled log streams keep the master\'s memory bounded while it goes on serving a real follower', async () => {
    const root = tempDir();
    const master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--no-sync']);
    masters.push(master);
    // Warm-up: the in-memory tail and LevelDB's write buffer reach their steady size before the baseline.
    await writeMiB(master.address, 'warm', 64);

    // The master's position, as a follower that had applied everything would hold it: a
    // snapshot's StreamStart names the seq and the chained checksum of the entry there.
    const probe = new RawClient(master.address);
    const { err, messages } = await probe.stream(MASTER.Subscribe, encodeMaster('Subscribe', { followerId: 99, fromSeq: '1', prevChecksum: 0 }));
    probe.close();
    assert.equal(err, null);
    const position = (decodeMasterResponse('Subscribe', messages[0]) as SubscribeResponse__Output).start!;
    const seq = BigInt(position.snapshot!.seq);
    assert.equal(String(seq), (await status(master.address)).lastSeq);

    // Log case: each subscribes at the master's position, on its history, with the right
    // checksum: the master continues that history, so it streams the log (no snapshot).
    const ids = Array.from({ length: SLOW_CLIENTS }, (_, i) => 200 + i);
    const starts = await stalledSubscribers(master.address, slow, (i) => ({
      followerId: ids[i],
      fromSeq: String(seq + 1n),
      historyId: position.historyId,
      prevChecksum: position.snapshot!.checksum,
    }));
    for (const start of starts) {
      assert.equal(start.snapshot, null, 'a log stream, not a snapshot');
      assert.equal(start.reason, '');
      assert.equal(String(start.fromSeq), String(seq + 1n), 'the log from exactly the next seq');
    }
    const follower = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--no-sync']);
    followers.push(follower);
    await waitFor(async () => (await runTool('get-data', ['1', 'warm63', '--data-root', root])).code === 0, 'the follower to catch up with the warm-up', 60_000, 200);
    const before = memory(master.proc.pid);
    resetPeak(master.proc.pid);

    // 128 MiB of entries the slow clients are owed and never read, while the real follower takes them all.
    await writeMiB(master.address, 'log', LOG_MB);
    await waitFor(
      async () => (await runTool('get-data', ['1', `log${LOG_MB - 1}`, '--data-root', root])).code === 0,
      'the follower to replicate the whole log',
      120_000,
      200,
    );
    checkGrowth(master.proc.pid, before, 'log streams', MAX_LOG_GROWTH_MB);
    // The master stopped at backpressure: each was sent (4 MiB unsent, plus what the
    // transport and the client's read-ahead took: 15 entries measured) far less than the
    // 128 MiB it is owed. Without backpressure: all of it.
    for (const f of await slowClients(master.address, ids)) {
      const sent = BigInt(f.sentSeq) - seq;
      assert.ok(sent <= BigInt(LOG_MB / 4), `slow client ${f.followerId} was sent ${sent} of the ${LOG_MB} entries it is owed`);
    }
    assert.equal(master.proc.exited, false);
  });
});
