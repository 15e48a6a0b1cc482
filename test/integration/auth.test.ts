import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { makeTestPki } from '../helpers/certs.js';
import { healthCheck, reflectionServices } from '../helpers/probes.js';
import { runTool, ServerProcess, tempDir, waitFor, type ToolResult } from '../helpers/processes.js';
import { encodeMaster, MASTER, RawClient } from '../helpers/raw-client.js';

const TOKENS = {
  write: 'w-0123456789abcdef0123456789abcdef',
  read: 'r-0123456789abcdef0123456789abcdef',
  replicate: 'p-0123456789abcdef0123456789abcdef',
  unknown: 'x-0123456789abcdef0123456789abcdef',
};
const TABLE = [
  '# roles     token                                name',
  `write       ${TOKENS.write}   loader`,
  `read        ${TOKENS.read}   dashboard`,
  `replicate   ${TOKENS.replicate}   followers`,
].join('\n');

async function serve(tool: 'master-server' | 'follower-client', args: string[], env: NodeJS.ProcessEnv = {}) {
  const proc = new ServerProcess(tool, args, { env });
  const line = await proc.waitForLog(tool === 'master-server' ? 'master listening' : 'follower serving reads');
  return { proc, address: (line.address ?? line.readAddress) as string };
}

function refused(res: ToolResult, code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED'): void {
  assert.equal(res.code, 6, `exit code; stderr: ${res.stderr}`);
  assert.equal(res.stderr.trim().split('\n').length, 1, `one line: ${res.stderr}`);
  assert.match(res.stderr, new RegExp(`\\[${code}\\]$`, 'm'));
}

describe('token authentication and roles', () => {
  const root = tempDir();
  const tableFile = path.join(root, 'tokens');
  let master: Awaited<ReturnType<typeof serve>>;
  let follower: Awaited<ReturnType<typeof serve>>;
  const as = (role: keyof typeof TOKENS | 'none') => ({ env: role === 'none' ? { LR_TOKEN: '' } : { LR_TOKEN: TOKENS[role] } });
  const digest = async () => (await runTool('store-digest', ['master', '--data-root', root], as('read'))).stdout;

  before(async () => {
    fs.writeFileSync(tableFile, TABLE, { mode: 0o600 });
    master = await serve('master-server', ['--data-dir', path.join(root, 'master'), '--listen', '127.0.0.1:0', '--heartbeat-interval-ms', '200', '--auth-tokens-file', tableFile]);
    // The follower's read service takes the same table from the environment; it reaches the master with the replicate token.
    follower = await serve('follower-client', ['1', '--data-dir', path.join(root, 'follower-1'), '--master', master.address, '--listen', '127.0.0.1:0'], {
      LR_AUTH_TOKENS: TABLE,
      LR_TOKEN: TOKENS.replicate,
    });
  });
  after(async () => {
    await follower?.proc.kill('SIGKILL');
    await master?.proc.kill('SIGKILL');
  });

  it('write role: push-data is allowed with it and refused without it; nothing is written', async () => {
    const before = await digest();
    const push = (role: keyof typeof TOKENS | 'none') => runTool('push-data', ['k', 'v', '--master', master.address], as(role));
    refused(await push('none'), 'UNAUTHENTICATED');
    refused(await push('unknown'), 'UNAUTHENTICATED');
    refused(await push('read'), 'PERMISSION_DENIED');
    const replicate = await push('replicate');
    refused(replicate, 'PERMISSION_DENIED');
    assert.match(replicate.stderr, /token of followers has role replicate; levelreplicator.v1.Master\/Write needs role write/);
    assert.equal(await digest(), before, 'nothing written by refused calls');
    const ok = await push('write');
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(master.proc.logs.some((l) => l.msg === 'request refused' && l.principal === 'dashboard'), 'refusals name the holder');
    assert.ok(!JSON.stringify(master.proc.logs).includes(TOKENS.read.slice(2)), 'tokens never appear in logs');
  });

  it('replicate role: followers need it to subscribe; Ack needs it too', async () => {
    await waitFor(async () => (await runTool('get-data', ['1', 'k', '--data-root', root], as('read'))).stdout === 'v\n', 'follower 1 (replicate token) to replicate');
    const f2 = await serve('follower-client', ['2', '--data-dir', path.join(root, 'follower-2'), '--master', master.address, '--listen', '127.0.0.1:0'], { LR_TOKEN: '' });
    const f3 = await serve('follower-client', ['3', '--data-dir', path.join(root, 'follower-3'), '--master', master.address, '--listen', '127.0.0.1:0'], { LR_TOKEN: TOKENS.read });
    try {
      await waitFor(() => f2.proc.logs.some((l) => l.code === 'UNAUTHENTICATED'), 'follower 2 to log UNAUTHENTICATED');
      await waitFor(() => f3.proc.logs.some((l) => l.code === 'PERMISSION_DENIED'), 'follower 3 to log PERMISSION_DENIED');
    } finally {
      await f2.proc.kill('SIGTERM');
      await f3.proc.kill('SIGTERM');
    }
    assert.equal((await runTool('get-data', ['2', 'k', '--data-root', root])).code, 1, 'follower 2 applied nothing');
    const raw = new RawClient(master.address);
    const ack = (role: keyof typeof TOKENS) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${TOKENS[role]}`);
      return raw.unary(MASTER.Ack, encodeMaster('Ack', { followerId: 1, appliedSeq: '1' }), { metadata: md });
    };
    assert.equal((await ack('replicate')).err, null);
    assert.equal((await ack('write')).err?.code, grpc.status.PERMISSION_DENIED);
    raw.close();
  });

  it('read role: get-data, replication-status and store-digest need it, on the master and on followers', async () => {
    for (const [tool, args] of [
      ['get-data', ['1', 'k', '--data-root', root]],
      ['replication-status', ['--master', master.address]],
      ['store-digest', ['master', '1', '--data-root', root]],
    ] as const) {
      const ok = await runTool(tool, [...args], as('read'));
      assert.equal(ok.code, 0, `${tool}: ${ok.stderr}`);
      refused(await runTool(tool, [...args], as('none')), 'UNAUTHENTICATED');
      refused(await runTool(tool, [...args], as('write')), 'PERMISSION_DENIED');
    }
  });

  it('health needs no token; reflection needs the read role (master and follower)', async () => {
    const status = (code: grpc.status) => (err: unknown) => (err as grpc.ServiceError).code === code;
    for (const address of [master.address, follower.address]) {
      // Load balancers hold no token: health answers without one, on every service name.
      assert.equal(await healthCheck(address), 'SERVING', `health on ${address} without a token`);
      assert.equal(await healthCheck(address, 'levelreplicator.v1.Store'), 'SERVING');
      for (const version of ['v1', 'v1alpha'] as const) {
        await assert.rejects(reflectionServices(address, undefined, version), status(grpc.status.UNAUTHENTICATED), `${version} reflection without a token on ${address}`);
        await assert.rejects(reflectionServices(address, TOKENS.unknown, version), status(grpc.status.UNAUTHENTICATED));
        for (const role of ['write', 'replicate'] as const) {
          await assert.rejects(reflectionServices(address, TOKENS[role], version), status(grpc.status.PERMISSION_DENIED), `${version} reflection with the ${role} token on ${address}`);
        }
        const services = await reflectionServices(address, TOKENS.read, version);
        for (const s of ['levelreplicator.v1.Master', 'levelreplicator.v1.Store', 'grpc.health.v1.Health']) {
          assert.ok(services.includes(s), `${version} reflection on ${address} lists ${s}: ${services.join(', ')}`);
        }
      }
    }
  });

  it('tokens come from a file or the environment, never from a flag', async () => {
    const file = path.join(root, 'my-token');
    fs.writeFileSync(file, `# the dashboard's token\n${TOKENS.read}\n`, { mode: 0o600 });
    const viaFile = await runTool('replication-status', ['--master', master.address, '--token-file', file], as('none'));
    assert.equal(viaFile.code, 0, viaFile.stderr);
    const flag = await runTool('replication-status', ['--master', master.address, '--token', TOKENS.read]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--token is not accepted \(ps would show it\): put the token in LR_TOKEN or in a file named by --token-file/);
    const bad = path.join(root, 'bad-table');
    fs.writeFileSync(bad, 'admin short-token\n');
    const start = await runTool('master-server', ['--data-dir', path.join(root, 'm2'), '--listen', '127.0.0.1:0', '--auth-tokens-file', bad]);
    assert.equal(start.code, 2);
    assert.match(start.stderr, /entry 1: unknown role "admin"; roles are read, write, replicate \[INVALID_ARGUMENT\]/);
  });
});

describe('exposure warning', () => {
  const root = tempDir();
  const pki = makeTestPki(path.join(root, 'pki'));
  const tableFile = path.join(root, 'tokens');
  fs.writeFileSync(tableFile, TABLE, { mode: 0o644 });

  /**
   * Starts a master (bound only for a moment), stops it with SIGTERM and returns its stderr
   * and logs. Not SIGKILL: the warning is printed just after the "master listening" line,
   * and a kill on seeing that line could beat it. Exit 0 means start-up ran to its end.
   */
  async function startup(listen: string, extra: string[]) {
    const m = await serve('master-server', ['--data-dir', path.join(root, `m-${Math.random().toString(16).slice(2)}`), '--listen', listen, ...extra]);
    const exit = await m.proc.kill('SIGTERM');
    assert.equal(exit.code, 0, `master-server stopped cleanly: ${m.proc.stderr}`);
    return m.proc;
  }

  it('a server reachable from other machines without TLS or tokens warns prominently at start-up', async () => {
    const open = await startup('0.0.0.0:0', []);
    assert.match(open.stderr, /master-server: WARNING: listening on 0\.0\.0\.0:\d+ without TLS .* and without tokens or client certificates/);
    assert.ok(open.logs.some((l) => String(l.msg).startsWith('INSECURE:')));
    const tokensOnly = await startup('0.0.0.0:0', ['--auth-tokens-file', tableFile]);
    assert.match(tokensOnly.stderr, /WARNING: listening on .* without TLS \(data and tokens cross the network in clear text\); see README/);
    assert.ok(tokensOnly.logs.some((l) => l.msg === 'the token table can be read by other users; chmod 600 it'));
    const secured = await startup('0.0.0.0:0', ['--auth-tokens-file', tableFile, '--tls-cert', pki.server.cert, '--tls-key', pki.server.key]);
    assert.doesNotMatch(secured.stderr, /WARNING/);
    const loopback = await startup('127.0.0.1:0', []);
    assert.equal(loopback.stderr, '', 'loopback: no warning');
  });

  /**
   * Starts a follower (its master need not exist) and stops it with SIGTERM. Exit 0 means
   * it got past start-up, where the warning is printed (after the read service listens).
   */
  async function followerStartup(listen: string, extra: string[]) {
    const id = String(Math.floor(Math.random() * 1e6) + 1);
    const f = await serve('follower-client', [id, '--data-dir', path.join(root, `f-${id}`), '--master', '127.0.0.1:1', '--listen', listen, ...extra]);
    const exit = await f.proc.kill('SIGTERM');
    assert.equal(exit.code, 0, `follower-client stopped cleanly: ${f.proc.stderr}`);
    return f.proc;
  }

  it("follower-client's read service reachable from other machines without TLS or tokens warns prominently at start-up", async () => {
    const open = await followerStartup('0.0.0.0:0', []);
    assert.match(
      open.stderr,
      /^follower-client: WARNING: listening on 0\.0\.0\.0:\d+ without TLS \(data and tokens cross the network in clear text\) and without tokens or client certificates \(anyone who can connect may read, write and replicate\); see README "Security"$/m,
    );
    assert.equal(open.stderr.trim().split('\n').length, 1, `one line: ${open.stderr}`);
    assert.ok(open.logs.some((l) => String(l.msg).startsWith('INSECURE: listening on 0.0.0.0:')), 'and an INSECURE log line');
    // Client certificates are client authentication too: with TLS and --tls-client-auth, no warning.
    const mtls = await followerStartup('0.0.0.0:0', ['--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--tls-ca', pki.ca, '--tls-client-auth']);
    assert.doesNotMatch(mtls.stderr, /WARNING/);
    const loopback = await followerStartup('127.0.0.1:0', []);
    assert.equal(loopback.stderr, '', 'loopback: no warning');
  });
});
