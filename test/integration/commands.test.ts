import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

describe('the four commands, as users type them', () => {
  const root = tempDir();
  const masterDir = path.join(root, 'master');
  const f1Dir = path.join(root, 'follower-1');
  let master: MasterHandle;
  let f1: FollowerHandle | undefined;
  const get = (id: string, key: string, extra: string[] = []) => runTool('get-data', [id, key, '--data-root', root, ...extra]);
  const push = (args: string[], input?: string) => runTool('push-data', [...args, '--master', master.address], { input });

  before(async () => {
    master = await startMaster(masterDir);
    f1 = await startFollower(1, f1Dir, master.address);
  });
  after(async () => {
    await f1?.proc.kill('SIGKILL');
    await master.proc.kill('SIGKILL');
  });

  it('push-data prints the seq; get-data reads a running follower', async () => {
    const put = await push(['color', 'blue']);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stdout.trim(), '1');
    const got = await waitFor(async () => {
      const r = await get('1', 'color');
      return r.code === 0 ? r : undefined;
    }, 'follower 1 to have color');
    assert.equal(got.stdout, 'blue\n');
    const missing = await get('1', 'no-such-key');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found on follower 1/);
    assert.equal(missing.stdout, '');
  });

  it('several pairs are one atomic write under one seq; --delete removes keys', async () => {
    const put = await push(['a', '1', 'b', '2']);
    assert.equal(put.stdout.trim(), '2');
    const del = await push(['--delete', 'a']);
    assert.equal(del.stdout.trim(), '3');
    await waitFor(async () => (await get('1', 'a')).code === 1 && (await get('1', 'b')).stdout === '2\n', 'delete to replicate');
  });

  it('bulk loads key<TAB>value lines from stdin in batches, each pair its own seq', async () => {
    const lines = Array.from({ length: 2_500 }, (_, i) => `bulk-${i}\tvalue-${i}`).join('\n') + '\n';
    const res = await push(['--stdin', '--batch-size', '1000'], lines);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /loaded 2500 pairs, seqs 4\.\.2503/);
    await waitFor(async () => (await get('1', 'bulk-2499')).stdout === 'value-2499\n', 'bulk load to replicate');
  });

  it('replication-status shows the master position and the follower, with lag', async () => {
    const res = await runTool('replication-status', ['--master', master.address, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const s = JSON.parse(res.stdout);
    assert.equal(s.master.lastSeq, '2503');
    const f = s.followers.find((x: { id: number }) => x.id === 1);
    assert.equal(f.connected, true);
    assert.equal(typeof f.lagMs, 'number');
    assert.equal(BigInt(f.lagEntries), BigInt(s.master.lastSeq) - BigInt(f.appliedSeq));
    const text = await runTool('replication-status', ['--master', master.address]);
    assert.match(text.stdout, /lastSeq 2503/);
    assert.match(text.stdout, /^1\s+streaming/m);
  });

  it('get-data reads a stopped follower from its store, and after SIGKILL despite a stale endpoint file', async () => {
    await waitFor(async () => (await get('1', 'bulk-2499', ['--seq'])).stderr.includes('appliedSeq=2503'), 'follower 1 caught up');
    const { code } = await f1!.proc.kill('SIGTERM');
    assert.equal(code, 0);
    assert.equal(fs.existsSync(path.join(f1Dir, 'endpoint.json')), false, 'clean stop removes the endpoint file');
    const stopped = await get('1', 'color', ['--seq']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout, 'blue\n');
    assert.match(stopped.stderr, /via=store/);

    f1 = await startFollower(1, f1Dir, master.address);
    const running = await get('1', 'color', ['--seq']);
    assert.match(running.stderr, /via=rpc/);
    await f1.proc.kill('SIGKILL');
    assert.equal(fs.existsSync(path.join(f1Dir, 'endpoint.json')), true, 'SIGKILL leaves the endpoint file behind');
    const afterKill = await get('1', 'color', ['--seq']);
    assert.equal(afterKill.code, 0, afterKill.stderr);
    assert.match(afterKill.stderr, /via=store/);
    f1 = undefined;
  });

  it('a stopped follower catches up on restart, resuming from its applied seq', async () => {
    await push(['late', 'write']);
    f1 = await startFollower(1, f1Dir, master.address);
    const subscribed = await f1.proc.waitForLog(/^connected to master/);
    assert.equal(subscribed.fromSeq, '2504');
    await waitFor(async () => (await get('1', 'late')).stdout === 'write\n', 'late write to replicate');
  });

  it('every command has --help listing its options, defaults and environment variables', async () => {
    for (const tool of ['master-server', 'follower-client', 'push-data', 'get-data', 'replication-status', 'replication-admin', 'store-digest']) {
      const res = await runTool(tool, ['--help']);
      assert.equal(res.code, 0, `${tool} --help: ${res.stderr}`);
      assert.match(res.stdout, /\[env: LR_/, `${tool} --help names env vars`);
      assert.match(res.stdout, /default/, `${tool} --help shows defaults`);
    }
  });

  it('a flag given twice takes its last value', async () => {
    // push() appends the real --master after this unreachable one: the last one wins.
    const res = await push(['--master', '127.0.0.1:1', 'twice', 'x']);
    assert.equal(res.code, 0, res.stderr);
    const got = await waitFor(async () => {
      const r = await get('1', 'twice', ['--min-seq', res.stdout.trim()]);
      return r.code === 0 ? r : undefined;
    }, 'follower 1 to have the write');
    assert.equal(got.stdout, 'x\n');
  });
});

describe('versions, nodes by address, config files', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  const elsewhere = tempDir(); // a working directory with no data directories: only addresses can find nodes
  const version = (JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;

  before(async () => {
    master = await startMaster(path.join(root, 'master'));
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    assert.equal((await runTool('push-data', ['color', 'green', '--master', master.address])).code, 0);
  });
  after(async () => {
    await f1.proc.kill('SIGKILL');
    await master.proc.kill('SIGKILL');
  });

  it('--version on every command prints the package version', async () => {
    assert.match(version, /^\d+\.\d+\.\d+/);
    for (const tool of ['master-server', 'follower-client', 'push-data', 'get-data', 'replication-status', 'store-digest']) {
      const res = await runTool(tool, ['--version']);
      assert.equal(res.code, 0, `${tool}: ${res.stderr}`);
      assert.equal(res.stdout, `${version}\n`, tool);
      assert.equal(res.stderr, '');
    }
  });

  it('get-data --address reads the node at that address, without a data directory', async () => {
    const got = await waitFor(async () => {
      const r = await runTool('get-data', ['--address', f1.readAddress, 'color', '--seq'], { cwd: elsewhere });
      return r.code === 0 ? r : undefined;
    }, 'follower 1 to have color');
    assert.equal(got.stdout, 'green\n');
    assert.match(got.stderr, /via=rpc/);
    const missing = await runTool('get-data', ['--address', f1.readAddress, 'no-such-key'], { cwd: elsewhere });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`not found at ${f1.readAddress}`));
    // From the environment, the same.
    const viaEnv = await runTool('get-data', ['color'], { cwd: elsewhere, env: { LR_NODE_ADDRESS: f1.readAddress } });
    assert.equal(viaEnv.stdout, 'green\n', viaEnv.stderr);
    // An id on the command line wins over an address from the environment.
    const byId = await runTool('get-data', ['1', 'color', '--data-root', root], { env: { LR_NODE_ADDRESS: '127.0.0.1:1' } });
    assert.equal(byId.stdout, 'green\n', byId.stderr);
    // Nothing answers there: unavailable, no store to fall back to.
    const dead = await runTool('get-data', ['--address', '127.0.0.1:1', 'color'], { cwd: elsewhere });
    assert.equal(dead.code, 3, dead.stderr);
    assert.match(dead.stderr, /\[FOLLOWER_UNAVAILABLE\]/);
    assert.equal(fs.readdirSync(elsewhere).length, 0, 'nothing created');
  });

  it('store-digest --address digests nodes at their addresses; equal stores give equal digests', async () => {
    const rows = await waitFor(async () => {
      const r = await runTool('store-digest', ['--address', `${master.address},${f1.readAddress}`, '--json'], { cwd: elsewhere });
      assert.equal(r.code, 0, r.stderr);
      const [m, f] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { node: string; digest: string; seq: string; via: string });
      return m.seq === f.seq ? [m, f] : undefined;
    }, 'the follower to reach the master seq');
    assert.deepEqual(rows.map((r) => r.node), [master.address, f1.readAddress]);
    assert.equal(rows[0].digest, rows[1].digest);
    assert.ok(rows.every((r) => r.via === 'rpc'));
    // Mixed with a node by name: master from its data directory, follower 1 by address.
    const mixed = await runTool('store-digest', ['master', '--data-root', root, '--address', f1.readAddress]);
    assert.equal(mixed.code, 0, mixed.stderr);
    assert.equal(mixed.stdout.trim().split('\n').length, 2);
  });

  it('a --config file sets options; an environment variable wins over it, and a flag over both', async () => {
    const dir = tempDir();
    const file = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const dead = '127.0.0.1:1';
    const unset = { LR_MASTER_ADDRESS: '', LR_TIMEOUT_MS: '' };
    // config > default (the default address has no master in this test).
    const good = file('good.yaml', `# push-data settings\nmaster: ${master.address}\ntimeout-ms: 5000\n`);
    const fromConfig = await runTool('push-data', ['--config', good, 'k1', 'v1'], { env: unset });
    assert.equal(fromConfig.code, 0, fromConfig.stderr);
    // env > config.
    const envWins = await runTool('push-data', ['--config', good, 'k2', 'v2'], { env: { ...unset, LR_MASTER_ADDRESS: dead } });
    assert.equal(envWins.code, 3);
    assert.match(envWins.stderr, new RegExp(`master at ${dead} is unavailable`));
    // flag > env > config.
    const bad = file('bad.json', JSON.stringify({ master: dead }));
    const flagWins = await runTool('push-data', ['--config', bad, '--master', master.address, 'k3', 'v3'], { env: { ...unset, LR_MASTER_ADDRESS: '127.0.0.1:2' } });
    assert.equal(flagWins.code, 0, flagWins.stderr);
    // The file may come from LR_CONFIG; JSON works as well as YAML; a switch is true or false.
    const status = file('status.json', JSON.stringify({ master: master.address, json: true }));
    const res = await runTool('replication-status', [], { env: { ...unset, LR_CONFIG: status } });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).master.address, master.address);
  });
});
