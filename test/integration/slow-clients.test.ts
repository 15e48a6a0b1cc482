import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { encodeMaster, MASTER, RawClient } from '../helpers/raw-client.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/** Resident memory (MiB) of a process now, and its peak so far. Linux only, as is CI. */
function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]);
  return { rssMb: kb('VmRSS') >> 10, peakMb: kb('VmHWM') >> 10 };
}

const LOG_MB = 128; // twice the master's in-memory tail: most entries are read from LevelDB per stream
const SLOW_CLIENTS = 8;
/**
 * A correctness bound, not a timing one. Each stalled stream may hold up to 4 MiB of
 * unsent entries (MAX_UNSENT_BYTES) plus one message: about 40 MiB for eight, measured
 * +40 MiB. Without backpressure each would buffer the whole uncached log, 8 x 64 MiB:
 * measured +800 MiB.
 */
const MAX_GROWTH_MB = 250;

describe('slow clients that never read their stream', () => {
  const root = tempDir();
  let master: MasterHandle;
  let follower: FollowerHandle | undefined;
  const slow: RawClient[] = [];
  after(async () => {
    for (const c of slow) c.close();
    await follower?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('keep the master\'s memory bounded while it goes on serving a real follower', async () => {
    master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--no-sync']);
    const writer = new RawClient(master.address);
    const value = Buffer.alloc(1024 * 1024, 7);
    for (let i = 0; i < LOG_MB; i += 8) {
      const writes = Array.from({ length: 8 }, (_, j) => ({ mutations: [{ kind: 'PUT', key: Buffer.from(`k${i + j}`), value }] }));
      const { err } = await writer.unary(MASTER.Write, encodeMaster('Write', { writes }));
      assert.equal(err, null);
    }
    writer.close();
    const before = memory(master.proc.pid);

    // Each subscribes from seq 1, takes the first message, and never reads again.
    let started = 0;
    for (let i = 0; i < SLOW_CLIENTS; i++) {
      const client = new RawClient(master.address);
      slow.push(client);
      const request = encodeMaster('Subscribe', { followerId: 100 + i, fromSeq: '1', prevChecksum: 0 });
      const call = client.client.makeServerStreamRequest<Buffer, Buffer>(MASTER.Subscribe, (b) => b, (b) => b, request, {});
      call.once('data', () => {
        started++;
        call.pause();
      });
      call.on('error', (_err: grpc.ServiceError) => {});
    }
    await waitFor(() => started === SLOW_CLIENTS, 'every slow client to get its stream');

    // Meanwhile a real follower replicates the whole log from seq 1.
    follower = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--no-sync']);
    await waitFor(
      async () => (await runTool('get-data', ['1', `k${LOG_MB - 1}`, '--data-root', root])).code === 0,
      'the follower to replicate the whole log',
      120_000,
      200,
    );
    const now = memory(master.proc.pid);
    const growth = now.peakMb - before.rssMb;
    process.stdout.write(`# master memory: ${before.rssMb} MiB before the slow clients, peak ${now.peakMb} MiB after (+${growth} MiB)\n`);
    assert.ok(growth < MAX_GROWTH_MB, `master memory grew by ${growth} MiB with ${SLOW_CLIENTS} stalled streams (bound ${MAX_GROWTH_MB})`);
    assert.equal(master.proc.exited, false);
  });
});
