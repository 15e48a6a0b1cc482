import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { digests, tsv } from '../helpers/cluster.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { runTool, ServerProcess, startMaster, tempDir, waitFor, type MasterHandle } from '../helpers/processes.js';
import { frames, screenLines } from '../helpers/terminal-screen.js';

/**
 * README "Snapshot bootstrap", point 6 (progress): the master sends a snapshot's exact key
 * count; off a terminal the follower logs `progress` lines with a percentage, ending at
 * 100% of that count; on a terminal the bar never tears a log line, ends at 100% and is
 * cleared, is not drawn for a tiny snapshot, and nothing is drawn once the process exits.
 */

const TOOLS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools');
/** A pino-pretty line as the follower writes it on a terminal, or one of its indented field lines. */
const PRETTY_LINE = /^(\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) \(follower-client\): \S.*|    \S.*)$/;
const BAR = 'snapshot  |';

type Line = ServerProcess['logs'][number];

/** A follower-client under a pseudo-terminal (util-linux script(1); see logging.test.ts). */
class TerminalFollower {
  out = '';
  readonly closed: Promise<number | null>;
  private readonly script;

  constructor(args: string[]) {
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const command = ['exec', process.execPath, path.join(TOOLS, 'follower-client.js'), ...args].map(quote).join(' ');
    this.script = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, LR_LOG_LEVEL: 'info' }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.script.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    this.closed = new Promise((resolve) => this.script.on('close', (code) => resolve(code)));
  }

  screen(): string[] {
    return screenLines(this.out);
  }

  waitForScreen(what: RegExp, label: string): Promise<string[]> {
    return waitFor(() => {
      const s = this.screen();
      return s.some((l) => what.test(l)) ? s : undefined;
    }, label, 60_000);
  }

  /** SIGTERM to the node process itself (script's child), so it stops cleanly; resolves with script's exit code. */
  async stop(): Promise<number | null> {
    const pid = this.script.pid!;
    const child = Number(fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    assert.ok(child > 0, 'the follower runs under script');
    process.kill(child, 'SIGTERM');
    return this.closed;
  }

  kill(): void {
    this.script.kill('SIGKILL');
  }
}

describe('snapshot progress: the real total, a percentage, and a bar that behaves', () => {
  const root = tempDir();
  const dir = (name: string) => path.join(root, name);
  const cleanup: (() => Promise<unknown> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
    fs.rmSync(root, { recursive: true, force: true });
  });
  /** A master in its own data root (<root>/<name>/master), for store-digest. */
  const master = async (name: string): Promise<MasterHandle> => {
    const m = await startMaster(path.join(dir(name), 'master'));
    cleanup.push(() => m.proc.kill('SIGKILL'));
    return m;
  };
  const push = async (m: MasterHandle, args: string[], input?: string) => {
    const res = await runTool('push-data', [...args, '--master', m.address], { input, timeoutMs: 120_000 });
    assert.equal(res.code, 0, res.stderr);
  };

  it('piped: progress lines carry a percentage and end at 100% of the master\'s exact key count', { timeout: 120_000 }, async () => {
    const m = await master('master-piped');
    // Overwrites and deletes: the count is of keys, not of writes.
    await push(m, ['--stdin'], tsv(30_000, (i) => `key-${String(i).padStart(5, '0')}`, (i) => `value-${i}`));
    await push(m, ['--stdin'], tsv(500, (i) => `key-${String(i).padStart(5, '0')}`, (i) => `again-${i}`));
    await push(m, ['--delete', ...Array.from({ length: 200 }, (_, i) => `key-${String(i * 7).padStart(5, '0')}`)]);
    const [masterDigest] = await digests(dir('master-piped'), ['master']);
    assert.equal(masterDigest.keys, '29800');

    const f = new ServerProcess('follower-client', ['1', '--data-dir', dir('follower-piped'), '--master', m.address, '--listen', '127.0.0.1:0', '--progress-interval-ms', '1'], {});
    cleanup.push(() => f.kill('SIGKILL'));
    await f.waitForLog(/^snapshot installed/, 60_000);
    const progress = f.logs.filter((l: Line) => l.msg === 'progress' && l.phase === 'snapshot');
    assert.ok(progress.length >= 2, JSON.stringify(progress));
    const last = progress[progress.length - 1];
    assert.deepEqual([last.keys, last.totalKeys, last.percent], ['29800', '29800', 100], JSON.stringify(last));
    for (const l of progress) {
      if (l.totalKeys === undefined) continue; // logged before the master's count arrived
      assert.equal(l.totalKeys, masterDigest.keys, 'the total is the master\'s key count');
      assert.equal(l.percent, Math.floor((Number(l.keys) * 100) / Number(l.totalKeys)), JSON.stringify(l));
    }
    assert.equal(f.stderr, '', 'no bar off a terminal');
    await f.kill('SIGTERM');
  });

  it('on a terminal: log lines are never torn, the bar ends at 100% and is cleared, nothing is drawn after exit', { timeout: 180_000 }, async (t) => {
    if (spawnSync('script', ['--version']).error) return t.skip('script(1) from util-linux (Debian: bsdutils) is not installed: no way to give the process a terminal');
    const m = await master('master-tty');
    // Big enough (about 40 MB) that holding the connection stops it midway.
    await push(m, ['--stdin'], tsv(20_000, (i) => `big-${String(i).padStart(5, '0')}`, (i) => `${i}-${'v'.repeat(2_000)}`));
    const proxy = await FaultProxy.start(m.address);
    cleanup.push(() => proxy.close());
    const followerDir = dir('follower-tty');
    const f = new TerminalFollower(['4', '--data-dir', followerDir, '--master', proxy.address, '--listen', '127.0.0.1:0', '--heartbeat-timeout-ms', '120000']);
    cleanup.push(() => f.kill());

    // Midway, with the bar on screen: the transfer stalls, and the follower logs a line.
    await waitFor(() => frames(f.out, BAR).some((fr) => / [1-9]\d?% of 20000 /.test(fr)), 'the bar, partly done', 60_000);
    proxy.blackhole();
    const readAddress = await waitFor(() => {
      const file = path.join(followerDir, 'endpoint.json');
      return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { address: string }).address : undefined;
    }, 'the follower endpoint file');
    const refused = await runTool('push-data', ['k', 'v', '--master', readAddress, '--no-redirect']);
    assert.notEqual(refused.code, 0, 'a follower refuses writes (and logs it)');
    const during = await f.waitForScreen(/request refused/, 'the refusal logged on the terminal');
    const at = during.findIndex((l) => /request refused/.test(l));
    assert.match(during[at], PRETTY_LINE, `a whole log line: ${JSON.stringify(during[at])}`);
    const barAt = during.findIndex((l) => l.startsWith(BAR));
    assert.ok(barAt > at, `the bar is drawn again below the log line: ${JSON.stringify(during.slice(at))}`);
    assert.ok(during.slice(barAt + 1).every((l) => l === ''), 'the bar is the last line');
    assert.doesNotMatch(during[barAt], / 100% /, 'still in progress: the transfer is held');

    proxy.heal();
    await f.waitForScreen(/snapshot installed/, 'the snapshot installed');
    const code = await f.stop();
    assert.equal(code, 0, f.out);
    const drawn = frames(f.out, BAR);
    assert.match(drawn[drawn.length - 1], /^snapshot {2}\|█{10,40}\| 100% of 20000 \| 20000 keys(, [\d.]+ MB)? \| \d+ keys\/s \| ETA 0s$/, 'the last frame is at 100%, and fits the terminal');
    const screen = f.screen();
    const visible = screen.filter((l) => l !== '');
    for (const l of visible) assert.match(l, PRETTY_LINE, `only whole log lines remain on screen: ${JSON.stringify(l)}\n${visible.join('\n')}`);
    assert.ok(!screen.some((l) => l.includes(BAR)), 'the bar was cleared');
    assert.ok(f.out.lastIndexOf(BAR) < f.out.indexOf('snapshot installed'), 'the bar ends before the line saying so');
    assert.match(visible.filter((l) => !l.startsWith('    ')).at(-1)!, /follower stopped/, 'nothing after the last log line');
  });

  it('on a terminal: a one-key snapshot draws no bar', { timeout: 120_000 }, async (t) => {
    if (spawnSync('script', ['--version']).error) return t.skip('script(1) is not installed');
    const m = await master('master-tiny');
    await push(m, ['only', 'key']);
    const f = new TerminalFollower(['5', '--data-dir', dir('follower-tiny'), '--master', m.address, '--listen', '127.0.0.1:0']);
    cleanup.push(() => f.kill());
    await f.waitForScreen(/snapshot installed/, 'the snapshot installed');
    assert.equal(await f.stop(), 0, f.out);
    assert.ok(!f.out.includes('snapshot  |'), `no bar: ${JSON.stringify(f.out)}`);
    for (const l of f.screen().filter((x) => x !== '')) assert.match(l, PRETTY_LINE);
  });
});
