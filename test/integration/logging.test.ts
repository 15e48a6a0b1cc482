import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { runTool, ServerProcess, tempDir, waitFor } from '../helpers/processes.js';

/**
 * README "Observability > Logs": pino logs on stdout, one JSON object per line when stdout
 * is not a terminal and readable lines on one; the level from --log-level or LR_LOG_LEVEL.
 */

const TOOLS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools');
const LEVEL = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
/** A token table other users can read: the master warns about it at start-up (a warning that needs no network). */
const TOKEN_TABLE_WARNING = 'the token table can be read by other users; chmod 600 it';
const REPLICATION_TIMEOUT_DEBUG = 'write committed but not acknowledged by enough followers in time';

type Line = ServerProcess['logs'][number];
/** A pretty entry: time, level, name, message and (optionally) its fields, all on one line. */
const PRETTY_LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) \((master-server|follower-client)\): \S.*$/;

/** An address nothing listens on (a port just released), for a follower whose master is down. */
async function deadAddress(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

/** The address a master wrote to its endpoint file (it logs nothing at info with --log-level warn). */
function endpointAddress(dataDir: string): Promise<string> {
  return waitFor(() => {
    const file = path.join(dataDir, 'endpoint.json');
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { address: string }).address : undefined;
  }, `${dataDir}/endpoint.json`);
}

/** SIGTERM, then the process must stop cleanly (every line it logged has been read by then). */
async function stop(proc: ServerProcess): Promise<void> {
  const { code } = await proc.kill('SIGTERM');
  assert.equal(code, 0, proc.stderr);
}

const levels = (logs: readonly Line[]) => logs.map((l) => l.level as number);

describe('logs: JSON lines off a terminal, readable on one, level by flag or LR_LOG_LEVEL', () => {
  const root = tempDir();
  const procs: ServerProcess[] = [];
  /** A server process; LR_LOG_LEVEL defaults to unset here (ServerProcess itself sets debug). */
  const serve = (tool: string, args: string[], env: NodeJS.ProcessEnv = { LR_LOG_LEVEL: '' }) => {
    const p = new ServerProcess(tool, args, { env });
    procs.push(p);
    return p;
  };
  let n = 0;
  const dir = (name: string) => path.join(root, `${name}-${++n}`);
  const tokenTable = path.join(root, 'tokens');
  fs.writeFileSync(tokenTable, `write,read,replicate  ${'a1'.repeat(16)}  everyone\n`);
  fs.chmodSync(tokenTable, 0o644);
  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('off a terminal, master-server and follower-client print one JSON object per line, with level, time, pid, name and msg', { timeout: 60_000 }, async () => {
    const masterDir = dir('master');
    const master = serve('master-server', ['--data-dir', masterDir, '--listen', '127.0.0.1:0']);
    const address = (await master.waitForLog('master listening')).address as string;
    const follower = serve('follower-client', ['7', '--data-dir', dir('follower'), '--master', address]);
    await follower.waitForLog(/^connected to master/);
    assert.equal((await runTool('push-data', ['k', 'v', '--master', address])).code, 0);
    await stop(follower);
    await stop(master);
    for (const [proc, name] of [
      [master, 'master-server'],
      [follower, 'follower-client'],
    ] as const) {
      assert.ok(proc.logs.length >= 3, `${name} logged its start and stop`);
      // ServerProcess keeps a line that is not JSON as { msg: line }: no level, no time.
      for (const l of proc.logs) {
        assert.equal(typeof l.level, 'number', `${name}: not a JSON log line: ${JSON.stringify(l)}`);
        assert.equal(typeof l.time, 'number', `${name}: ${JSON.stringify(l)}`);
        assert.equal(l.pid, proc.pid, `${name}: ${JSON.stringify(l)}`);
        assert.equal(l.name, name);
        assert.equal(typeof l.msg, 'string');
        if (name === 'follower-client') assert.equal(l.followerId, 7, `a follower's lines carry its id: ${JSON.stringify(l)}`);
      }
      // The default level is info.
      assert.ok(levels(proc.logs).every((lv) => lv >= LEVEL.info), `${name}: ${JSON.stringify(proc.logs)}`);
      assert.equal(proc.stderr, '', `${name} writes logs to stdout only`);
    }
  });

  it('--log-level warn (winning over LR_LOG_LEVEL) and LR_LOG_LEVEL=warn keep warnings and drop info and debug', { timeout: 60_000 }, async () => {
    for (const how of [
      { args: ['--log-level', 'warn'], env: { LR_LOG_LEVEL: 'debug' } },
      { args: [], env: { LR_LOG_LEVEL: 'warn' } },
    ]) {
      const masterDir = dir('master');
      const master = serve('master-server', ['--data-dir', masterDir, '--listen', '127.0.0.1:0', '--auth-tokens-file', tokenTable, ...how.args], how.env);
      await endpointAddress(masterDir);
      await master.waitForLog(TOKEN_TABLE_WARNING);
      await stop(master);
      assert.ok(levels(master.logs).every((lv) => lv >= LEVEL.warn), `master, ${JSON.stringify(how)}: ${JSON.stringify(master.logs)}`);
      assert.equal(master.logs.find((l) => l.msg === TOKEN_TABLE_WARNING)?.level, LEVEL.warn);
      assert.equal(master.hasLog('master listening'), false);

      // A follower whose master is down warns once (repeats are debug), after its info lines.
      const follower = serve('follower-client', ['1', '--data-dir', dir('follower'), '--master', await deadAddress(), ...how.args], how.env);
      const warned = await follower.waitForLog(/is unavailable/);
      assert.equal(warned.level, LEVEL.warn);
      assert.equal(warned.code, 'MASTER_UNAVAILABLE');
      await stop(follower);
      assert.ok(levels(follower.logs).every((lv) => lv >= LEVEL.warn), `follower, ${JSON.stringify(how)}: ${JSON.stringify(follower.logs)}`);
      assert.equal(follower.hasLog('follower serving reads'), false);
    }
  });

  it('--log-level debug (winning over LR_LOG_LEVEL) shows debug lines; the default level does not', { timeout: 60_000 }, async () => {
    const debugLines = async (args: string[], env: NodeJS.ProcessEnv) => {
      const master = serve('master-server', ['--data-dir', dir('master'), '--listen', '127.0.0.1:0', ...args], env);
      const address = (await master.waitForLog('master listening')).address as string;
      // No follower to wait for: the master logs the timed-out acknowledgement at debug.
      const res = await runTool('push-data', ['k', 'v', '--master', address, '--ack-followers', '1', '--ack-timeout-ms', '200']);
      assert.equal(res.code, 7, res.stderr);
      await stop(master);
      return master.logs.filter((l) => l.level === LEVEL.debug);
    };
    const shown = await debugLines(['--log-level', 'debug'], { LR_LOG_LEVEL: 'info' });
    assert.ok(shown.some((l) => l.msg === REPLICATION_TIMEOUT_DEBUG), 'the debug line is there');
    assert.deepEqual(await debugLines([], { LR_LOG_LEVEL: '' }), [], 'no debug line at the default level');

    // The follower: a failure it already logged, repeated, is logged at debug.
    const follower = serve('follower-client', ['1', '--data-dir', dir('follower'), '--master', await deadAddress(), '--log-level', 'debug'], { LR_LOG_LEVEL: 'info' });
    const repeat = await waitFor(() => follower.logs.find((l) => l.level === LEVEL.debug && /is unavailable/.test(l.msg ?? '')), 'a repeated failure at debug');
    assert.equal(repeat.code, 'MASTER_UNAVAILABLE');
    await stop(follower);
  });

  it('an unknown level is refused with exit 2 before anything starts, by flag or by LR_LOG_LEVEL', { timeout: 60_000 }, async () => {
    for (const [tool, extra] of [
      ['master-server', []],
      ['follower-client', ['1', '--master', '127.0.0.1:1']],
    ] as const) {
      for (const how of [
        { args: ['--log-level', 'loud'], env: {} },
        { args: [], env: { LR_LOG_LEVEL: 'loud' } },
      ]) {
        const dataDir = dir(tool);
        const res = await runTool(tool, [...extra, '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...how.args], { env: how.env });
        assert.equal(res.code, 2, `${tool} ${JSON.stringify(how)}: ${res.stderr}`);
        assert.equal(res.stdout, '');
        assert.match(res.stderr, new RegExp(`^${tool}: .*log-level.*"loud".*"warn"`, 's'), 'it names the option, the value and the choices');
        assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
        assert.equal(fs.existsSync(dataDir), false, 'nothing was created');
      }
    }
  });

  it(
    'an unknown level is refused in one line (contract 12)',
    { timeout: 30_000 },
    async () => {
      const res = await runTool('master-server', ['--data-dir', dir('master'), '--log-level', 'loud']);
      assert.equal(res.code, 2);
      assert.equal(res.stderr.trimEnd().split('\n').length, 1, res.stderr);
    },
  );

  it('--log-format pretty or LR_LOG_FORMAT=pretty off a terminal: one readable line per entry, coloured unless NO_COLOR', { timeout: 60_000 }, async () => {
    // ServerProcess keeps a line that is not JSON as { msg: line }: here every line is one.
    const run = async (args: string[], env: NodeJS.ProcessEnv) => {
      const master = serve('master-server', ['--data-dir', dir('master'), '--listen', '127.0.0.1:0', ...args], { LR_LOG_LEVEL: '', ...env });
      await master.waitForLog(/master listening/);
      await stop(master);
      return master.logs.map((l) => String(l.msg));
    };
    const plain = await run(['--log-format', 'pretty'], { NO_COLOR: '1', LR_LOG_FORMAT: 'json' });
    assert.ok(plain.length >= 3, JSON.stringify(plain));
    assert.ok(plain.every((l) => PRETTY_LINE.test(l)), `one whole entry per line: ${plain.join('\n')}`);
    assert.ok(plain.every((l) => !l.includes('\x1b')), 'NO_COLOR: no colour codes');
    assert.match(plain.find((l) => l.includes('master listening'))!, /\): master listening \{"address":"127\.0\.0\.1:\d+",/);
    const coloured = await run([], { LR_LOG_FORMAT: 'pretty', NO_COLOR: '' });
    assert.ok(coloured.some((l) => /\x1b\[\d+m/.test(l)), 'coloured by default');
    assert.ok(coloured.map((l) => l.replace(/\x1b\[[0-9;]*m/g, '')).every((l) => PRETTY_LINE.test(l)));
    // --log-format json is JSON whatever LR_LOG_FORMAT says.
    const master = serve('master-server', ['--data-dir', dir('master'), '--listen', '127.0.0.1:0', '--log-format', 'json'], { LR_LOG_LEVEL: '', LR_LOG_FORMAT: 'pretty' });
    await master.waitForLog('master listening');
    await stop(master);
    assert.ok(master.logs.every((l) => typeof l.level === 'number'), JSON.stringify(master.logs));
  });

  it('an error that stops a server from starting is in the log stream too, and on stderr in one line', { timeout: 60_000 }, async () => {
    const masterDir = dir('master');
    const running = serve('master-server', ['--data-dir', masterDir, '--listen', '127.0.0.1:0']);
    const address = (await running.waitForLog('master listening')).address as string;
    for (const [args, code, exit] of [
      [['--data-dir', masterDir, '--listen', '127.0.0.1:0'], 'DATA_DIR_LOCKED', 4],
      [['--data-dir', dir('master'), '--listen', address], 'ADDRESS_IN_USE', 3],
    ] as const) {
      const res = await runTool('master-server', [...args], { env: { LR_LOG_LEVEL: '', LR_LOG_FORMAT: '' } });
      assert.equal(res.code, exit, res.stderr);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr, new RegExp(`\\[${code}\\]`));
      const fatal = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line).filter((l) => l.level === LEVEL.fatal);
      assert.equal(fatal.length, 1, res.stdout);
      assert.equal(fatal[0].msg, 'could not start');
      assert.equal(fatal[0].code, code);
      assert.equal(typeof fatal[0].err, 'string');
    }
    const follower = await runTool('follower-client', ['1', '--data-dir', masterDir, '--master', address], { env: { LR_LOG_LEVEL: '', LR_LOG_FORMAT: 'json' } });
    assert.equal(follower.code, 4, follower.stderr);
    const line = follower.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line).find((l) => l.level === LEVEL.fatal);
    assert.equal(line?.msg, 'could not start');
    assert.equal(line?.followerId, 1);
    await stop(running);
  });

  it("a new follower's first snapshot is logged at info, on the follower and on the master", { timeout: 60_000 }, async () => {
    const master = serve('master-server', ['--data-dir', dir('master'), '--listen', '127.0.0.1:0']);
    const address = (await master.waitForLog('master listening')).address as string;
    assert.equal((await runTool('push-data', ['k', 'v', '--master', address])).code, 0);
    const follower = serve('follower-client', ['5', '--data-dir', dir('follower'), '--master', address]);
    const line = await follower.waitForLog('master is sending a snapshot');
    assert.equal(line.level, LEVEL.info);
    assert.equal(line.appliedSeq, '0');
    assert.equal((await master.waitForLog('sending a snapshot')).level, LEVEL.info);
    await follower.waitForLog(/^connected to master/);
    await stop(follower);
    await stop(master);
    assert.ok(levels(follower.logs).every((lv) => lv < LEVEL.warn), `nothing to warn about: ${JSON.stringify(follower.logs)}`);
  });

  it('on a terminal the lines are readable (pino-pretty), not JSON', { timeout: 60_000 }, async (t) => {
    // util-linux script(1) runs a command under a pseudo-terminal. On Debian it is in
    // bsdutils, an Essential package (installed everywhere).
    if (spawnSync('script', ['--version']).error) return t.skip('script(1) from util-linux (Debian: bsdutils) is not installed: no way to give the process a terminal');
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const onTerminal = async (tool: string, args: string[], ready: string, firstMsg: string, name: string) => {
      const command = ['exec', process.execPath, path.join(TOOLS, `${tool}.js`), ...args].map(quote).join(' ');
      const script = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, LR_LOG_LEVEL: 'info' }, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      script.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const closed = new Promise<number | null>((resolve) => script.on('close', (code) => resolve(code)));
      try {
        const plain = () => out.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');
        await waitFor(() => plain().includes(ready), `${tool} to log "${ready}" on the terminal`);
        // Stop the node process itself (script's child), so it shuts down cleanly.
        let child: number | undefined;
        try {
          child = Number(fs.readFileSync(`/proc/${script.pid}/task/${script.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || undefined;
        } catch {
          child = undefined;
        }
        if (child) process.kill(child, 'SIGTERM');
        else script.kill('SIGTERM');
        const code = await closed;
        if (child) assert.equal(code, 0, out);
        const lines = plain().split('\n').filter((l) => l.trim() !== '');
        assert.ok(lines.length > 0);
        assert.doesNotMatch(lines[0], /^\s*\{/, `not JSON: ${lines[0]}`);
        assert.throws(() => JSON.parse(lines[0]));
        // One line per entry: its fields follow the message as JSON on the same line.
        assert.match(lines[0], new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO \\(${name}\\): ${firstMsg}( \\{.*\\})?$`), `readable: ${lines[0]}`);
        assert.ok(lines.every((l) => !l.startsWith('{')), `no JSON line at all: ${plain()}`);
        assert.ok(lines.every((l) => PRETTY_LINE.test(l)), `every line is a whole entry: ${plain()}`);
        assert.match(out, /\x1b\[\d+m/, 'coloured');
      } finally {
        script.kill('SIGKILL');
      }
    };
    await onTerminal('master-server', ['--data-dir', dir('master'), '--listen', '127.0.0.1:0'], 'master listening', 'master store opened', 'master-server');
    await onTerminal('follower-client', ['3', '--data-dir', dir('follower'), '--master', await deadAddress()], 'follower serving reads', 'follower store opened', 'follower-client');
  });
});
