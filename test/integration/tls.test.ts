import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTestPki, type TestPki } from '../helpers/certs.js';
import { runTool, ServerProcess, tempDir, waitFor, type ToolResult } from '../helpers/processes.js';

/** Starts a server process and waits until it listens; returns it with the address it logged. */
async function serve(tool: 'master-server' | 'follower-client', args: string[], env: NodeJS.ProcessEnv = {}) {
  const proc = new ServerProcess(tool, args, { env });
  const line = await proc.waitForLog(tool === 'master-server' ? 'master listening' : 'follower serving reads');
  return { proc, address: (line.address ?? line.readAddress) as string };
}

function refused(res: ToolResult, exitCode: number, code: string | RegExp): void {
  assert.equal(res.code, exitCode, `exit code; stderr: ${res.stderr}`);
  assert.equal(res.stderr.trim().split('\n').length, 1, `one line on stderr: ${res.stderr}`);
  assert.match(res.stderr, typeof code === 'string' ? new RegExp(`\\[${code}\\]`) : code);
}

describe('TLS', () => {
  const root = tempDir();
  let pki: TestPki;
  let master: Awaited<ReturnType<typeof serve>>;
  let follower: Awaited<ReturnType<typeof serve>>;
  const ca = () => ['--tls-ca', pki.ca];
  const digest = async () => (await runTool('store-digest', ['master', '--data-root', root, ...ca()])).stdout;

  before(async () => {
    pki = makeTestPki(path.join(root, 'pki'));
    master = await serve('master-server', ['--data-dir', path.join(root, 'master'), '--listen', '127.0.0.1:0', '--heartbeat-interval-ms', '200', '--tls-cert', pki.server.cert, '--tls-key', pki.server.key]);
    // The follower verifies the master with the CA and serves its reads over TLS too.
    follower = await serve('follower-client', ['1', '--data-dir', path.join(root, 'follower-1'), '--master', master.address, '--listen', '127.0.0.1:0', '--tls-cert', pki.server.cert, '--tls-key', pki.server.key], { LR_TLS_CA: pki.ca });
  });
  after(async () => {
    await follower?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('happy path: every command over TLS, verified against the CA', async () => {
    const put = await runTool('push-data', ['color', 'blue', '--master', master.address, ...ca()]);
    assert.equal(put.code, 0, put.stderr);
    await waitFor(async () => (await runTool('get-data', ['1', 'color', '--data-root', root, ...ca()])).stdout === 'blue\n', 'replication over TLS');
    const viaRpc = await runTool('get-data', ['1', 'color', '--data-root', root, '--seq', ...ca()]);
    assert.match(viaRpc.stderr, /via=rpc/, 'read from the running follower over TLS');
    const status = await runTool('replication-status', ['--master', master.address, '--json', ...ca()]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).followers[0].connected, true);
    const digests = await runTool('store-digest', ['master', '1', '--data-root', root, '--json', ...ca()]);
    assert.equal(digests.code, 0, digests.stderr);
    const [m, f] = digests.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(m.via, 'rpc');
    assert.equal(m.digest, f.digest);
    // localhost is in the certificate too, and --tls-server-name picks the name to verify.
    const port = master.address.split(':')[1];
    assert.equal((await runTool('push-data', ['shape', 'square', '--master', `localhost:${port}`, ...ca()])).code, 0);
    assert.equal((await runTool('push-data', ['size', 'big', '--master', master.address, '--tls-server-name', 'localhost', ...ca()])).code, 0);
  });

  it('rejection: a client without the CA, with another CA, expecting another name, or in plaintext', async () => {
    const before = await digest();
    const push = (extra: string[]) => runTool('push-data', ['evil', 'write', '--master', master.address, ...extra]);
    refused(await push(['--tls']), 6, /server certificate is not trusted: check --tls-ca \[TLS_FAILED\]/);
    refused(await push(['--tls-ca', pki.otherCa]), 6, 'TLS_FAILED');
    refused(await push(['--tls-server-name', 'other.example', ...ca()]), 6, /does not name this host.*\[TLS_FAILED\]/);
    refused(await push([]), 3, /TLS\/plaintext mismatch.*\[MASTER_UNAVAILABLE\]/);
    refused(await runTool('get-data', ['1', 'color', '--data-root', root]), 6, 'TLS_FAILED');
    refused(await runTool('replication-status', ['--master', master.address, '--tls-ca', pki.otherCa]), 6, 'TLS_FAILED');
    assert.equal(await digest(), before, 'nothing written');
  });

  it('a follower that does not trust the master never applies anything from it', async () => {
    const dir = path.join(root, 'follower-2');
    const f2 = await serve('follower-client', ['2', '--data-dir', dir, '--master', master.address, '--listen', '127.0.0.1:0', '--tls-ca', pki.otherCa]);
    try {
      await waitFor(() => f2.proc.logs.some((l) => l.code === 'TLS_FAILED'), 'the follower to log the TLS failure');
      assert.equal(f2.proc.logs.filter((l) => l.code === 'TLS_FAILED' && (l.level as number) >= 40).length, 1, 'logged once, not per retry');
    } finally {
      await f2.proc.kill('SIGTERM');
    }
    const res = await runTool('get-data', ['2', 'color', '--data-root', root]);
    assert.equal(res.code, 1, 'nothing applied');
  });

  it('bad TLS files are one clear line at start-up', async () => {
    const dir = path.join(root, 'm2');
    const start = (extra: string[]) => runTool('master-server', ['--data-dir', dir, '--listen', '127.0.0.1:0', ...extra]);
    refused(await start(['--tls-cert', pki.server.cert]), 2, /--tls-cert and --tls-key go together/);
    refused(await start(['--tls-cert', pki.server.cert, '--tls-key', pki.client.key]), 2, /--tls-key does not belong to --tls-cert/);
    refused(await start(['--tls-cert', path.join(root, 'missing.pem'), '--tls-key', pki.server.key]), 2, /cannot read --tls-cert .*ENOENT/);
    fs.writeFileSync(path.join(root, 'not-pem.txt'), 'hello');
    refused(await start(['--tls-cert', path.join(root, 'not-pem.txt'), '--tls-key', pki.server.key]), 2, /is not a PEM file/);
    refused(await start(['--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--tls-client-auth']), 2, /--tls-client-auth needs --tls-ca/);
    assert.equal(fs.existsSync(dir), false, 'nothing created');
  });
});

describe('mutual TLS', () => {
  const root = tempDir();
  let pki: TestPki;
  let master: Awaited<ReturnType<typeof serve>>;
  let follower: Awaited<ReturnType<typeof serve>>;
  const serverTls = () => ['--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--tls-ca', pki.ca];

  before(async () => {
    pki = makeTestPki(path.join(root, 'pki'));
    master = await serve('master-server', ['--data-dir', path.join(root, 'master'), '--listen', '127.0.0.1:0', '--heartbeat-interval-ms', '200', ...serverTls(), '--tls-client-auth']);
    // The follower presents its certificate (serverAuth and clientAuth) to the master.
    follower = await serve('follower-client', ['1', '--data-dir', path.join(root, 'follower-1'), '--master', master.address, '--listen', '127.0.0.1:0', ...serverTls()]);
  });
  after(async () => {
    await follower?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('happy path: clients with a certificate signed by the CA', async () => {
    const client = ['--tls-ca', pki.ca, '--tls-cert', pki.client.cert, '--tls-key', pki.client.key];
    const put = await runTool('push-data', ['k', 'v', '--master', master.address, ...client]);
    assert.equal(put.code, 0, put.stderr);
    await waitFor(async () => (await runTool('get-data', ['1', 'k', '--data-root', root, ...client])).stdout === 'v\n', 'replication over mutual TLS');
    const status = await runTool('replication-status', ['--master', master.address, '--json', ...client]);
    assert.equal(JSON.parse(status.stdout).followers[0].connected, true);
  });

  it('rejection: no client certificate, or one from another CA; nothing written', async () => {
    const env = { LR_TLS_CA: pki.ca };
    const before = await runTool('store-digest', ['master', '--data-root', root, '--tls-ca', pki.ca, '--tls-cert', pki.client.cert, '--tls-key', pki.client.key]);
    const noCert = await runTool('push-data', ['evil', 'x', '--master', master.address], { env });
    refused(noCert, 6, /requires a client certificate: pass --tls-cert and --tls-key \[TLS_FAILED\]/);
    const otherCa = await runTool('push-data', ['evil', 'x', '--master', master.address, '--tls-cert', pki.otherClient.cert, '--tls-key', pki.otherClient.key], { env });
    assert.notEqual(otherCa.code, 0);
    assert.match(otherCa.stderr, /\[(TLS_FAILED|MASTER_UNAVAILABLE)\]/);
    const after = await runTool('store-digest', ['master', '--data-root', root, '--tls-ca', pki.ca, '--tls-cert', pki.client.cert, '--tls-key', pki.client.key]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, before.stdout);
  });

  it("a follower's read service with --tls-client-auth requires a client certificate", async () => {
    const client = ['--tls-ca', pki.ca, '--tls-cert', pki.client.cert, '--tls-key', pki.client.key];
    const put = await runTool('push-data', ['read-me', 'v', '--master', master.address, ...client]);
    assert.equal(put.code, 0, put.stderr);
    const seq = put.stdout.trim();
    const f2 = await serve('follower-client', ['2', '--data-dir', path.join(root, 'follower-2'), '--master', master.address, '--listen', '127.0.0.1:0', ...serverTls(), '--tls-client-auth']);
    try {
      const read = (id: string, extra: string[]) => runTool('get-data', [id, 'read-me', '--data-root', root, '--seq', '--min-seq', seq, ...extra]);
      // With a certificate signed by the CA: the running follower answers over RPC.
      // (--min-seq: the read waits on the follower until it has replicated the write.)
      const ok = await read('2', client);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, 'v\n');
      assert.match(ok.stderr, /via=rpc/);
      // Without one: refused in the handshake, and get-data does not fall back to the store.
      refused(await read('2', ['--tls-ca', pki.ca]), 6, /requires a client certificate: pass --tls-cert and --tls-key \[TLS_FAILED\]/);
      // With one from another CA: dropped before any call.
      const otherCa = await read('2', ['--tls-ca', pki.ca, '--tls-cert', pki.otherClient.cert, '--tls-key', pki.otherClient.key]);
      assert.notEqual(otherCa.code, 0, otherCa.stdout);
      assert.equal(otherCa.stdout, '');
      assert.match(otherCa.stderr, /\[(TLS_FAILED|FOLLOWER_UNAVAILABLE)\]/);
      // Follower 1 serves the same TLS without --tls-client-auth: no client certificate needed there.
      const open = await read('1', ['--tls-ca', pki.ca]);
      assert.equal(open.code, 0, open.stderr);
      assert.equal(open.stdout, 'v\n');
    } finally {
      await f2.proc.kill('SIGTERM');
    }
  });
});
