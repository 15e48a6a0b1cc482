import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../../src/common/limits.js';
import { masterClient } from '../../src/wire/rpc-client.js';
import { runTool, ServerProcess, startFollower, startMaster, tempDir, type FollowerHandle, type MasterHandle, type ToolResult } from '../helpers/processes.js';

/** One clear line on stderr, the expected exit code and error code, no stack trace. */
function assertRefused(res: ToolResult, exitCode: number, errorCode: string | RegExp): void {
  assert.equal(res.code, exitCode, `exit code; stderr: ${res.stderr}`);
  const lines = res.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got: ${res.stderr}`);
  assert.match(lines[0], typeof errorCode === 'string' ? new RegExp(`\\[${errorCode}\\]`) : errorCode);
  assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe('bad input: a clear line, a non-zero exit, and no change to stored data', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  let digestBefore: string;
  const digest = async () => (await runTool('store-digest', ['master', '--data-root', root])).stdout;
  const push = (args: string[], input?: string) => runTool('push-data', [...args, '--master', master.address], { input });

  before(async () => {
    master = await startMaster(path.join(root, 'master'));
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    assert.equal((await push(['existing', 'value'])).code, 0);
    digestBefore = await digest();
  });
  after(async () => {
    await f1.proc.kill('SIGKILL');
    await master.proc.kill('SIGKILL');
  });

  it('empty key', async () => {
    assertRefused(await push(['', 'v']), 2, 'EMPTY_KEY');
    assertRefused(await runTool('get-data', ['1', '', '--data-root', root]), 2, 'EMPTY_KEY');
  });

  it('key and value at the limit are accepted; one byte over is refused', async () => {
    assertRefused(await push(['k'.repeat(MAX_KEY_BYTES + 1), 'v']), 2, 'KEY_TOO_LARGE');
    assertRefused(await push(['--stdin'], `big\t${'v'.repeat(MAX_VALUE_BYTES + 1)}\n`), 2, /VALUE_TOO_LARGE/);
    assert.equal(await digest(), digestBefore);
    const atLimit = await push(['--stdin'], `${'k'.repeat(MAX_KEY_BYTES)}\t${'v'.repeat(MAX_VALUE_BYTES)}\n`);
    assert.equal(atLimit.code, 0, atLimit.stderr);
    digestBefore = await digest();
  });

  it('the master refuses oversize and empty keys itself, whatever the client checks', async () => {
    const client = masterClient(master.address);
    const call = (key: Buffer, value: Buffer) =>
      new Promise<grpc.ServiceError | null>((resolve) =>
        client.Write({ writes: [{ mutations: [{ kind: 'PUT', key, value }] }] }, (err) => resolve(err)),
      );
    const tooBig = await call(Buffer.from('k'), Buffer.alloc(MAX_VALUE_BYTES + 1));
    assert.equal(tooBig?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(tooBig?.metadata.get('lr-error-code')[0], 'VALUE_TOO_LARGE');
    const empty = await call(Buffer.alloc(0), Buffer.from('v'));
    assert.equal(empty?.metadata.get('lr-error-code')[0], 'EMPTY_KEY');
    client.close();
    assert.equal(await digest(), digestBefore);
  });

  it('malformed bulk lines stop the load with the line number', async () => {
    assertRefused(await push(['--stdin'], 'no tab on this line\n'), 2, /-:1: expected key<TAB>value/);
    assertRefused(await push(['--file', path.join(root, 'does-not-exist.tsv')]), 2, /cannot read/);
    assertRefused(await push(['onlykey']), 2, 'INVALID_ARGUMENT');
  });

  it('follower ids that are not positive integers, including path escapes', async () => {
    for (const id of ['../x', '0', '-1', '1.5', 'abc', '1/2', '/etc', '99999999999']) {
      assertRefused(await runTool('follower-client', [id, '--data-root', root]), 2, 'INVALID_FOLLOWER_ID');
      assertRefused(await runTool('get-data', [id, 'k', '--data-root', root]), 2, 'INVALID_FOLLOWER_ID');
    }
    assert.equal(fs.readdirSync(root).sort().join(','), 'follower-1,master');
  });

  it('a data directory already in use by another process', async () => {
    const second = new ServerProcess('master-server', ['--data-dir', path.join(root, 'master'), '--listen', '127.0.0.1:0']);
    const { code } = await second.exit;
    assert.equal(code, 4);
    assert.match(second.stderr, /is in use by another process \[DATA_DIR_LOCKED\]/);
    assert.equal(second.stderr.trim().split('\n').length, 1);
    const secondFollower = await runTool('follower-client', ['1', '--data-root', root, '--master', master.address]);
    assertRefused(secondFollower, 4, 'DATA_DIR_LOCKED');
    assert.equal(await digest(), digestBefore);
  });

  it('a port already in use', async () => {
    const res = await runTool('master-server', ['--data-dir', path.join(root, 'other-master'), '--listen', master.address]);
    assertRefused(res, 3, 'ADDRESS_IN_USE');
    assert.equal(fs.existsSync(path.join(root, 'other-master')), false, 'a failed start leaves no new data directory');
  });

  it('bad addresses and numbers', async () => {
    assertRefused(await runTool('push-data', ['--master', 'nonsense', 'k', 'v']), 2, 'INVALID_ADDRESS');
    assertRefused(await runTool('master-server', ['--listen', 'localhost:99999', '--data-dir', path.join(root, 'm2')]), 2, 'INVALID_ADDRESS');
    assertRefused(await runTool('push-data', ['--stdin', '--batch-size', '0', '--master', master.address]), 2, 'INVALID_ARGUMENT');
    assertRefused(await runTool('master-server', ['--no-such-flag']), 2, /Unknown argument/);
  });

  it('options are checked as they are parsed, from a flag or the environment, before anything starts', async () => {
    const fresh = path.join(root, 'm3');
    assertRefused(await runTool('master-server', ['--data-dir', fresh, '--trim-interval-ms', '0']), 2, 'INVALID_ARGUMENT');
    assertRefused(await runTool('master-server', ['--data-dir', fresh], { env: { LR_RETAIN_ENTRIES: 'many' } }), 2, /--retain-entries must be a positive integer, got "many" \[INVALID_ARGUMENT\]/);
    assert.equal(fs.existsSync(fresh), false, 'no data directory for a refused start');
    const help = await runTool('master-server', ['--help'], { env: { LR_RETAIN_ENTRIES: 'many' } });
    assert.equal(help.code, 0, `--help still works: ${help.stderr}`);
    // Checked even where this write would not use it.
    assertRefused(await push(['k', 'v', '--batch-size', '0']), 2, 'INVALID_ARGUMENT');
    assertRefused(await push(['k', 'v', '--ack-timeout-ms', '100']), 2, /--ack-timeout-ms needs --ack-followers/);
    // An empty --data-dir would put a store in the working directory.
    const cwd = tempDir();
    assertRefused(await runTool('follower-client', ['1', '--data-dir', '', '--master', master.address], { cwd }), 2, /--data-dir needs a path \[INVALID_ARGUMENT\]/);
    assert.deepEqual(fs.readdirSync(cwd), []);
    assert.equal(await digest(), digestBefore);
  });

  it('a bad number is echoed as given, by flag, environment variable or config file', async () => {
    assertRefused(await push(['--batch-size', 'abc', '--stdin'], 'k\tv\n'), 2, /--batch-size must be a positive integer, got "abc" \[INVALID_ARGUMENT\]/);
    assertRefused(await runTool('push-data', ['--stdin', '--master', master.address], { env: { LR_PUSH_BATCH_SIZE: '12x' }, input: 'k\tv\n' }), 2, /--batch-size must be a positive integer, got "12x"/);
    const config = path.join(tempDir(), 'push.yaml');
    fs.writeFileSync(config, 'batch-size: lots\n');
    assertRefused(await push(['--stdin', '--config', config], 'k\tv\n'), 2, /--batch-size must be a positive integer, got "lots"/);
    assert.equal(await digest(), digestBefore);
  });

  it('--file naming a directory is a usage error (exit 2), not an internal one', async () => {
    const res = await push(['--file', root]);
    assertRefused(res, 2, 'INVALID_ARGUMENT');
    assert.match(res.stderr, /--file .* is a directory/);
    assert.doesNotMatch(res.stderr, /internal error|EISDIR/);
  });

  it('an option the mode would ignore is refused, and nothing is written', async () => {
    assertRefused(await push(['--batch-size', 'abc', 'k', 'v']), 2, /got "abc"/);
    assertRefused(await push(['--batch-size', '10', 'ignored', 'v']), 2, /--batch-size applies only to a bulk load \(--file or --stdin\)/);
    assertRefused(await push(['--concurrency', '4', '--delete', 'existing']), 2, /--concurrency applies only to a bulk load/);
    assert.equal(await digest(), digestBefore);
    // From the environment it is a setting for bulk loads, not a mistake in this command line.
    const viaEnv = await runTool('push-data', ['from-env', 'v', '--master', master.address], { env: { LR_PUSH_BATCH_SIZE: '10' } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    digestBefore = await digest();
  });

  it('a missing argument is named', async () => {
    const cases: [string, string[], RegExp][] = [
      ['get-data', [], /^get-data: missing arguments <id> <key> \(see --help\)$/],
      ['get-data', ['1'], /^get-data: missing argument <key> \(see --help\)$/],
      ['get-data', ['--address', '127.0.0.1:1'], /^get-data: missing argument <key> /],
      ['follower-client', [], /^follower-client: missing argument <id> /],
      ['store-digest', [], /^store-digest: missing argument <node\.\.\.> /],
    ];
    for (const [tool, args, message] of cases) {
      const res = await runTool(tool, [...args, '--data-root', root]);
      assertRefused(res, 2, message);
      assert.doesNotMatch(res.stderr, /Not enough non-option arguments/);
    }
  });

  it('a bad --config file is refused in one line before anything starts', async () => {
    const dir = tempDir();
    const write = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const fresh = path.join(root, 'm-config');
    const serve = (config: string) => runTool('master-server', ['--data-dir', fresh, '--listen', '127.0.0.1:0', '--config', config]);
    assertRefused(await serve(write('unknown.yaml', 'no-such-option: 1\n')), 2, /"no-such-option" is not an option of this command \(see --help\) \[INVALID_ARGUMENT\]/);
    assertRefused(await serve(write('broken.yaml', 'listen: [\n')), 2, /not valid YAML or JSON/);
    assertRefused(await serve(write('list.json', '[1, 2]')), 2, /must be a mapping/);
    assertRefused(await serve(write('sync.yaml', 'sync: perhaps\n')), 2, /sync must be true or false, got "perhaps"/);
    assertRefused(await serve(write('level.yaml', 'log-level: loud\n')), 2, /--log-level: "loud" .* is not one of .*"warn"/);
    assertRefused(await serve(path.join(dir, 'missing.yaml')), 2, /no such file/);
    assertRefused(await serve(dir), 2, /is a directory/);
    // A key another command takes is still not one of this command's.
    assertRefused(await runTool('replication-status', ['--config', write('push.yaml', 'batch-size: 10\n')]), 2, /"batch-size" is not an option of this command/);
    assert.equal(fs.existsSync(fresh), false, 'nothing was created');
  });

  it('master unreachable: push-data fails within a few seconds', async () => {
    const port = await freePort();
    const started = Date.now();
    assertRefused(await runTool('push-data', ['k', 'v', '--master', `127.0.0.1:${port}`]), 3, 'MASTER_UNAVAILABLE');
    assert.ok(Date.now() - started < 8_000, 'failed fast');
    assertRefused(await runTool('replication-status', ['--master', `127.0.0.1:${port}`]), 3, 'MASTER_UNAVAILABLE');
  });

  it('a follower that does not exist', async () => {
    assertRefused(await runTool('get-data', ['7', 'k', '--data-root', root]), 4, 'STORE_NOT_FOUND');
    assert.equal(fs.existsSync(path.join(root, 'follower-7')), false, 'reading does not create a store');
  });

  it('stored data is unchanged by all of the above', async () => {
    assert.equal(await digest(), digestBefore);
  });
});
