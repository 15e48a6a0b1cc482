import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Cluster } from '../../src/tools/harness/cluster.js';
import { NodeProcess } from '../../src/tools/harness/node-process.js';
import { mergeStart } from '../../src/tools/harness/start-node.js';
import { readVia, tsv } from '../helpers/cluster.js';
import { runTool, TEST_FOLLOWER_ARGS, TEST_MASTER_ARGS, tempDir, waitFor } from '../helpers/processes.js';

/**
 * The process harness the tests and the bench share (src/tools/harness): what the fault
 * suite and the bench rows rely on, checked on its own.
 */
describe('process harness', () => {
  const root = tempDir();
  const c = new Cluster(root, { master: { args: TEST_MASTER_ARGS }, follower: { args: TEST_FOLLOWER_ARGS } });
  after(async () => {
    await c.killAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('merges start settings: flags and environments add up, the rest is replaced', () => {
    const m = mergeStart({ args: ['--a'], nodeArgs: ['--x'], env: { A: '1' }, logLevel: 'info' }, { args: ['--b'], env: { B: '2' }, logLevel: 'warn' });
    assert.deepEqual(m.args, ['--a', '--b']);
    assert.deepEqual(m.nodeArgs, ['--x']);
    assert.deepEqual(m.env, { A: '1', B: '2' });
    assert.equal(m.logLevel, 'warn');
  });

  it('waitForLog fails as soon as the process exits without the line, quoting its stderr', async () => {
    const proc = new NodeProcess('master-server', ['--listen', 'nonsense', '--data-dir', path.join(root, 'never')]);
    const started = Date.now();
    await assert.rejects(proc.waitForLog('master listening', 60_000), /exited before logging "master listening".*INVALID_ADDRESS/);
    assert.ok(Date.now() - started < 30_000, 'did not wait for the deadline');
    assert.equal((await proc.exit).code, 2);
  });

  it('starts a master and a follower, restarts each on its data directory (the master on its port)', async () => {
    await c.startMaster();
    c.addFollower(1, {});
    await c.startFollower(1);
    const first = c.masterAddress;
    const push = await runTool('push-data', ['--stdin', '--master', first], { input: tsv(10, (i) => `k${i}`, (i) => `v${i}`) });
    assert.equal(push.code, 0, push.stderr);
    await waitFor(async () => (await readVia(c.slot(1).readAddress!, 'k9')).value === 'v9', 'follower 1 to apply k9');

    await c.killMaster();
    await c.killFollower(1);
    await c.startMaster();
    await c.startFollower(1);
    assert.equal(c.masterAddress, first, 'the master came back on the same port');
    assert.equal((await readVia(c.slot(1).readAddress!, 'k9')).value, 'v9', 'the follower kept its store');
    assert.deepEqual(c.history.map((h) => h.name), ['master-1', 'follower-1-1', 'master-2', 'follower-1-2']);
    const line = await c.master!.waitForLogAt('master listening');
    assert.ok(line.at > 0 && line.at <= performance.now(), 'a line carries the time it arrived');
  });

  it('a frozen follower stays frozen until resumed; stop() resumes it and every node exits 0', async () => {
    const s = c.slot(1);
    s.proc!.pause();
    assert.equal(s.proc!.paused, true);
    const frozen = s.proc!;
    assert.deepEqual(await c.stop(30_000), []);
    assert.equal(frozen.exited, true);
    assert.equal(c.master, undefined);
  });
});
