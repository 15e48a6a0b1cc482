import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { callUnary, masterClient } from '../../src/wire/rpc-client.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';
import { waitConverged } from '../helpers/cluster.js';
import { startFollower, startMaster, tempDir, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';
import { diffStores, readStore } from '../helpers/stores.js';

/**
 * The master reads a snapshot's keys as text while they are valid UTF-8 and switches to
 * bytes at the first that is not (src/storage/snapshot-reader.ts). A store whose keys mix
 * text, multi-byte text and arbitrary bytes must still arrive exactly: every key and value
 * compared byte by byte (latin1 maps each byte to one char) between master and follower.
 */
describe('snapshot of binary keys', () => {
  const root = tempDir();
  const dir = (name: string) => path.join(root, name);
  let master: MasterHandle | undefined;
  let follower: FollowerHandle | undefined;
  after(async () => {
    await follower?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('a new follower gets text, multi-byte and non-UTF-8 keys exactly', { timeout: 120_000 }, async () => {
    master = await startMaster(dir('master'));
    const client = masterClient(master.address);
    const peer = { role: 'master' as const, address: master.address };
    // 20,000 keys over several snapshot chunks; every 997th is not valid UTF-8, and they
    // sort among the text keys (0x62 'b' < 0xff), at the start (0x00) and at the end.
    const key = (i: number): Buffer => {
      if (i % 997 === 0) return Buffer.from([0x62, 0xff, i & 0xff, (i >> 8) & 0xff]);
      if (i % 499 === 0) return Buffer.from(`b-\u00e9\u{1f600}-${i}`, 'utf8');
      if (i % 333 === 0) return Buffer.from(`b-\ufffd-${i}`, 'utf8');
      return Buffer.from(`b-${String(i).padStart(6, '0')}`);
    };
    const extremes = [Buffer.from([0x00]), Buffer.from([0xc0, 0x80]), Buffer.from([0xff, 0xff, 0xff])];
    try {
      for (let first = 0; first < 20_000; first += 1_000) {
        const writes = Array.from({ length: 1_000 }, (_, j) => ({ mutations: [{ kind: 'PUT' as const, key: key(first + j), value: Buffer.from([first + j, 0xfe, 0x00]) }] }));
        if (first === 0) for (const k of extremes) writes.push({ mutations: [{ kind: 'PUT', key: k, value: k }] });
        await callUnary<WriteResponse__Output>((o, cb) => client.Write({ writes }, o, cb), 30_000, peer);
      }
    } finally {
      client.close();
    }
    follower = await startFollower(1, dir('follower-1'), master.address);
    const snap = await follower.proc.waitForLog('master is sending a snapshot');
    assert.match(String(snap.reason), /new follower/);
    await follower.proc.waitForLog('snapshot installed; streaming the log after it', 60_000);
    await waitConverged(master.address, [1]);
    await follower.proc.kill('SIGTERM');
    await master.proc.kill('SIGTERM');
    const [m, f] = [await readStore(dir('master')), await readStore(dir('follower-1'))];
    assert.equal(m.data.size, 20_000 + extremes.length);
    assert.equal(diffStores(m.data, f.data), '');
    assert.equal(f.data.get(Buffer.from([0x62, 0xff, 0, 0]).toString('latin1')), Buffer.from([0, 0xfe, 0]).toString('latin1'));
  });
});
