import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_DATA_ROOT, DEFAULT_MASTER_ADDRESS } from '../../src/common/config.js';
import { status, tsv, waitConverged } from '../helpers/cluster.js';
import { checkAudit } from '../helpers/oracles.js';
import { runTool, ServerProcess, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle, type ToolResult } from '../helpers/processes.js';
import { readLog } from '../helpers/stores.js';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');
const TOOLS = ['master-server', 'follower-client', 'push-data', 'get-data', 'replication-status', 'replication-admin', 'store-digest'];

/**
 * The environment of a user who set none of our variables: every LR_* variable of the
 * test run is removed (ServerProcess's LR_LOG_LEVEL=debug too), so defaults are defaults.
 */
const USER_ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('LR_')).map((k) => [k, undefined])),
  LR_LOG_LEVEL: undefined,
};

/** One clear line on stderr, the expected exit code and error code, no stack trace. */
function assertRefused(res: { code: number | null; stderr: string }, exitCode: number, errorCode: string): void {
  assert.equal(res.code, exitCode, `exit code; stderr: ${res.stderr}`);
  const lines = res.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got: ${res.stderr}`);
  assert.match(lines[0], new RegExp(`\\[${errorCode}\\]`));
  assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** A TCP listener on a free port of 127.0.0.1 that only occupies it. */
async function occupyPort(): Promise<{ address: string; close: () => Promise<void> }> {
  const srv = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  return { address: `127.0.0.1:${port}`, close: () => new Promise((r) => srv.close(() => r())) };
}

const isStore = (dataDir: string) => fs.existsSync(path.join(dataDir, 'store', 'CURRENT'));

describe('defaults: the commands with no flags at all, in a fresh directory', () => {
  it('master-server, follower-client 1, push-data, get-data, replication-status, store-digest', async (t) => {
    const [host, port] = [DEFAULT_MASTER_ADDRESS.slice(0, DEFAULT_MASTER_ADDRESS.lastIndexOf(':')), Number(DEFAULT_MASTER_ADDRESS.split(':').pop())];
    assert.equal(DEFAULT_MASTER_ADDRESS, '127.0.0.1:50051', 'the README documents this default');
    assert.equal(DEFAULT_DATA_ROOT, './data', 'the README documents this default');
    if (!(await portIsFree(host, port))) {
      t.skip(`the default master address ${DEFAULT_MASTER_ADDRESS} is already in use on this machine; a run with no flags needs it`);
      return;
    }
    const cwd = tempDir('lr-defaults-');
    const opts = { cwd, env: USER_ENV };
    const master = new ServerProcess('master-server', [], opts);
    let follower: ServerProcess | undefined;
    try {
      let listening;
      try {
        listening = await master.waitForLog('master listening');
      } catch (err) {
        // Taken between the check above and the master's bind (another program, or a
        // test run next to this one): the same reason to skip, not a failure of ours.
        if (/ADDRESS_IN_USE/.test(master.stderr)) {
          t.skip(`the default master address ${DEFAULT_MASTER_ADDRESS} was taken while the master started: ${master.stderr.trim()}`);
          return;
        }
        throw err;
      }
      assert.equal(listening.address, DEFAULT_MASTER_ADDRESS);
      follower = new ServerProcess('follower-client', ['1'], opts);
      const serving = await follower.waitForLog('follower serving reads');
      assert.equal(serving.masterAddress, DEFAULT_MASTER_ADDRESS);
      assert.match(String(serving.readAddress), /^127\.0\.0\.1:\d+$/, 'the read service defaults to loopback and a free port');

      const put = await runTool('push-data', ['k', 'v'], opts);
      assert.equal(put.code, 0, put.stderr);
      assert.equal(put.stdout, '1\n', 'the first write of a new store gets seq 1');
      const got = await waitFor(async () => {
        const r = await runTool('get-data', ['1', 'k'], opts);
        return r.code === 0 ? r : undefined;
      }, 'follower 1 to have k');
      assert.equal(got.stdout, 'v\n');
      assert.equal(got.stderr, '');
      const missing = await runTool('get-data', ['1', 'missing'], opts);
      assert.equal(missing.code, 1, missing.stderr);
      assert.equal(missing.stdout, '');
      assert.match(missing.stderr, /key "missing" not found on follower 1/);

      await waitFor(async () => {
        const s = JSON.parse((await runTool('replication-status', ['--json'], opts)).stdout);
        return s.followers.find((f: { id: number }) => f.id === 1)?.appliedSeq === '1';
      }, 'follower 1 to acknowledge seq 1');
      const st = await runTool('replication-status', [], opts);
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, new RegExp(`^master ${DEFAULT_MASTER_ADDRESS.replace(/\./g, '\\.')} .*lastSeq 1\\b`, 'm'));
      assert.match(st.stdout, /^1\s+streaming\s+1\s/m);
      const dg = await runTool('store-digest', ['master', '1'], opts);
      assert.equal(dg.code, 0, dg.stderr);
      const rows = dg.stdout.trim().split('\n').map((l) => l.split(/\s+/));
      assert.deepEqual(rows.map((r) => r[0]), ['master', '1']);
      assert.equal(rows[0][1], rows[1][1], `equal digests: ${dg.stdout}`);
      assert.deepEqual(rows.map((r) => r.slice(2)), [['seq=1', 'keys=1'], ['seq=1', 'keys=1']]);

      // Everything landed under ./data of the working directory, and nowhere else.
      assert.deepEqual(fs.readdirSync(cwd), ['data']);
      assert.deepEqual(fs.readdirSync(path.join(cwd, 'data')).sort(), ['follower-1', 'master']);
      assert.ok(isStore(path.join(cwd, 'data', 'master')), 'the master store is in ./data/master');
      assert.ok(isStore(path.join(cwd, 'data', 'follower-1')), 'follower 1 store is in ./data/follower-1');
      assert.equal((await follower.kill('SIGTERM')).code, 0);
      assert.equal((await master.kill('SIGTERM')).code, 0);
    } finally {
      await follower?.kill('SIGKILL');
      await master.kill('SIGKILL');
    }
  });
});

interface HelpOption {
  name: string;
  /** The option's whole entry, its wrapped lines joined, whitespace collapsed. */
  text: string;
}

/**
 * The options listed by --help. An entry starts at a line `  -x, --name` or `      --name`
 * (yargs' option column); its wrapped description follows on lines indented to the
 * description column. Those can start with `--` too (a wrapped "--tls-client-auth ..."),
 * so an option is recognised by its indent, not by the `--` alone.
 */
function parseHelp(out: string): HelpOption[] {
  const at = out.indexOf('\nOptions:\n');
  assert.ok(at >= 0, `no "Options:" section in:\n${out}`);
  const options: HelpOption[] = [];
  for (const line of out.slice(at + '\nOptions:\n'.length).split('\n')) {
    const m = /^(?: {2}-\w, | {6})--([a-z][\w-]*)/.exec(line);
    if (m) options.push({ name: m[1], text: line });
    else if (options.length > 0 && line.trim() !== '') options[options.length - 1].text += ` ${line}`;
  }
  for (const o of options) o.text = o.text.replace(/\s+/g, ' ').trim();
  return options;
}

/**
 * Options that legitimately have no default: an optional input (a file, a name) that
 * is simply not used when absent, or whose unset value is computed from other options.
 * Each is listed with why; nothing else may lack a default.
 */
const NO_DEFAULT: Record<string, string> = {
  file: 'push-data --file: bulk load source, no bulk load without it',
  'tls-ca': 'a CA bundle file: unset means no custom CA (system CAs for clients, no client auth for servers)',
  'tls-cert': 'a certificate file: unset means no TLS as a server and no client certificate as a client',
  'tls-key': 'the key of --tls-cert: only used with it',
  'tls-server-name': 'unset means the host of the address, which depends on the address',
  'token-file': 'unset means the token in LR_TOKEN, or none',
  'auth-tokens-file': 'unset means the table in LR_AUTH_TOKENS, or no tokens',
  tls: 'boolean computed when unset: on when --tls-ca or --tls-cert is given (said in its text)',
  config: 'a config file: unset means the options come from flags, environment variables and defaults only',
  address: 'get-data, store-digest --address: unset means nodes are found through their data directories',
};

describe('--help of every command documents every option', () => {
  const helps = new Map<string, HelpOption[]>();
  before(async () => {
    for (const tool of TOOLS) {
      const res = await runTool(tool, ['--help'], { env: USER_ENV });
      assert.equal(res.code, 0, `${tool} --help: ${res.stderr}`);
      assert.equal(res.stderr, '');
      helps.set(tool, parseHelp(res.stdout));
    }
  });

  it('each option shows its default (or is a documented exception) and its LR_ environment variable', () => {
    const usedExceptions = new Set<string>();
    const problems: string[] = [];
    for (const tool of TOOLS) {
      const options = helps.get(tool)!.filter((o) => o.name !== 'help' && o.name !== 'version');
      // Not vacuous: each command lists its own options (and the parser found them).
      assert.ok(options.length >= 3, `${tool}: parsed only ${options.map((o) => o.name).join(', ')}`);
      for (const o of options) {
        const where = `${tool} --${o.name}: "${o.text}"`;
        const envs = [...o.text.matchAll(/\[env: ([^\]]*)\]/g)].map((m) => m[1]);
        if (envs.length !== 1 || !/^LR_[A-Z0-9_]+$/.test(envs[0])) problems.push(`${where}: no single [env: LR_...] (found ${JSON.stringify(envs)})`);
        if (!/\[(string|number|boolean)\]/.test(o.text)) problems.push(`${where}: no [type]`);
        const hasDefault = /\[default: [^\]]*\]/.test(o.text) || /\(default: [^)]+\)/.test(o.text) || /\[required\]/.test(o.text);
        if (hasDefault) continue;
        if (o.name in NO_DEFAULT) usedExceptions.add(o.name);
        else problems.push(`${where}: neither [default: ...] nor (default: ...) nor [required]`);
      }
    }
    assert.deepEqual(problems, []);
    assert.deepEqual(Object.keys(NO_DEFAULT).filter((n) => !usedExceptions.has(n)), [], 'stale exceptions in NO_DEFAULT');
  });

  it('the options the README documents are in --help with the same environment variable and default', () => {
    const readme = fs.readFileSync(README, 'utf8');
    const section = (heading: RegExp) => {
      const start = readme.search(heading);
      assert.ok(start >= 0, `README section ${heading}`);
      const next = readme.slice(start + 1).search(/\n#{2,3} /);
      return readme.slice(start, next < 0 ? undefined : start + 1 + next);
    };
    /** Rows `| --a[, --b] | LR_A[, LR_B] | default | ...`: each option with its env and default cell. */
    const rows = (text: string) => {
      const out = new Map<string, { env: string; def: string }>();
      for (const m of text.matchAll(/^\| ((?:`--[\w-]+`(?:, | \/ )?)+) \|([^|]*)\|([^|]*)\|/gm)) {
        const names = [...m[1].matchAll(/`--([\w-]+)`/g)].map((x) => x[1]).filter((n) => !n.startsWith('no-'));
        const envs = [...m[2].matchAll(/`(LR_[A-Z0-9_]+)`/g)].map((x) => x[1]);
        names.forEach((n, i) => out.set(n, { env: envs[i] ?? envs[0] ?? '', def: m[3].trim() }));
      }
      return out;
    };
    const server = rows(section(/^Servers \(`master-server`/m));
    const client = rows(section(/^Clients \(`push-data`/m));
    const documented: Record<string, Map<string, { env: string; def: string }>> = {};
    for (const tool of TOOLS) documented[tool] = rows(section(new RegExp(`^### \`${tool}[ \`]`, 'm')));
    const security = (tool: string) => (tool === 'master-server' ? [server] : tool === 'follower-client' ? [server, client] : [client]);
    const problems: string[] = [];
    for (const tool of TOOLS) {
      const own = documented[tool];
      assert.ok(own.size >= 3, `${tool}: README table parsed to ${[...own.keys()].join(', ')}`);
      for (const o of helps.get(tool)!) {
        // yargs' own flags: no value, no environment variable (--version is documented under Commands).
        if (o.name === 'help' || o.name === 'version') continue;
        const doc = own.get(o.name) ?? security(tool).map((t) => t.get(o.name)).find(Boolean);
        if (!doc) {
          problems.push(`${tool} --${o.name} is not in the README`);
          continue;
        }
        const env = /\[env: (LR_[A-Z0-9_]+)\]/.exec(o.text)?.[1];
        if (env !== doc.env) problems.push(`${tool} --${o.name}: env ${env} in --help, ${doc.env} in the README`);
        const def = /\[default: ([^\]]*)\]/.exec(o.text)?.[1].replace(/^"(.*)"$/, '$1');
        const docDef = /^`([^`]*)`/.exec(doc.def)?.[1];
        // An empty string default means "off" (--audit-file); the README says so in words.
        if (def !== undefined && def !== '' && def !== docDef) problems.push(`${tool} --${o.name}: default ${def} in --help, ${doc.def} in the README`);
      }
    }
    assert.deepEqual(problems, []);
  });
});

describe('push-data --file: a bulk load from a file', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  const N = 5_000;
  const key = (i: number) => `bulk-${String(i).padStart(5, '0')}`;
  // Values exercise the format: empty, a TAB inside (the value is everything after the first), non-ASCII.
  const value = (i: number) => (i === 0 ? '' : i === 1 ? 'left\tright' : i === 2 ? 'grüße ✓' : `value-${i}`);

  before(async () => {
    master = await startMaster(path.join(root, 'master'));
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
  });
  after(async () => {
    await f1.proc.kill('SIGKILL');
    await master.proc.kill('SIGKILL');
  });

  it('loads 5000 pairs, each under its own seq in file order, and they replicate', async () => {
    const first = await runTool('push-data', ['before', 'x', '--master', master.address]);
    assert.equal(first.stdout, '1\n', first.stderr);
    // Blank lines (one after every 1000 pairs, two at the end) are skipped and not counted.
    let text = '';
    for (let i = 0; i < N; i++) text += `${key(i)}\t${value(i)}\n${i % 1_000 === 999 ? '\n' : ''}`;
    const file = path.join(root, 'pairs.tsv');
    fs.writeFileSync(file, text + '\n\n');
    const res = await runTool('push-data', ['--file', file, '--master', master.address]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, '');
    assert.match(res.stdout, /^loaded 5000 pairs, seqs 2\.\.5001, in \d+\.\d\d s \(\d+\/s\)\n$/);

    // A second file with a batch size that does not divide it, and --json.
    const file2 = path.join(root, 'more.tsv');
    fs.writeFileSync(file2, tsv(1_234, (i) => `more-${i}`, (i) => `m${i}`));
    const res2 = await runTool('push-data', ['--file', file2, '--batch-size', '700', '--json', '--master', master.address]);
    assert.equal(res2.code, 0, res2.stderr);
    const json = JSON.parse(res2.stdout);
    assert.deepEqual({ pairs: json.pairs, firstSeq: json.firstSeq, lastSeq: json.lastSeq }, { pairs: 1_234, firstSeq: '5002', lastSeq: '6235' });

    // Read your write on the follower, then a sample across batch boundaries.
    const last = await runTool('get-data', ['1', key(N - 1), '--min-seq', '5001', '--data-root', root]);
    assert.equal(last.code, 0, last.stderr);
    assert.equal(last.stdout, `${value(N - 1)}\n`);
    for (const i of [0, 1, 2, 3, 998, 999, 1_000, 1_001, 2_345, 3_999, 4_000, 4_998]) {
      const r = await runTool('get-data', ['1', key(i), '--data-root', root]);
      assert.equal(r.code, 0, `${key(i)}: ${r.stderr}`);
      assert.equal(r.stdout, `${value(i)}\n`, key(i));
    }
    const more = await runTool('get-data', ['1', 'more-1233', '--min-seq', '6235', '--data-root', root]);
    assert.equal(more.stdout, 'm1233\n', more.stderr);
    assert.equal(await waitConverged(master.address, [1]), 6_235n);
    const dg = await runTool('store-digest', ['master', '1', '--json', '--data-root', root]);
    const [m, f] = dg.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(m.digest, f.digest);
    assert.equal(m.keys, String(1 + N + 1_234));

    // Each pair got its own seq, in file order (the default --concurrency is 1): all of
    // them, from the stopped master's log.
    assert.equal((await master.proc.kill('SIGTERM')).code, 0);
    const entries = await readLog(path.join(root, 'master'));
    assert.equal(entries.size, 6_235);
    for (let i = 0; i < N; i++) {
      const e = entries.get(BigInt(2 + i));
      assert.equal(e?.mutations.length, 1, `seq ${2 + i}`);
      assert.equal(e.mutations[0].key.toString(), key(i), `seq ${2 + i}`);
      assert.equal(e.mutations[0].value?.toString(), value(i), `seq ${2 + i}`);
    }
  });
});

describe('SIGINT stops the master and a follower cleanly', () => {
  const root = tempDir();
  const masterDir = path.join(root, 'master');
  const f1Dir = path.join(root, 'follower-1');
  const audit = path.join(root, 'audit-1.txt');
  const procs: ServerProcess[] = [];
  after(async () => {
    for (const p of procs) await p.kill('SIGKILL');
  });

  it('exit 0, store closed and reopened at once by a new process, the follower resumes exactly', async (t) => {
    let master = await startMaster(masterDir);
    procs.push(master.proc);
    const historyId = master.proc.logs.find((l) => l.msg === 'master store opened')?.historyId;
    assert.ok(historyId);
    let f1 = await startFollower(1, f1Dir, master.address, ['--audit-file', audit]);
    procs.push(f1.proc);
    // A bulk load runs through both stops below (small batches: many commits). From a
    // file, not stdin: push-data stops reading when the master goes away, and a pipe
    // would then fail the test run's write with EPIPE.
    const loadFile = path.join(root, 'load.tsv');
    fs.writeFileSync(loadFile, tsv(100_000, (i) => `load-${i}`, (i) => `v${i}`));
    const load: Promise<ToolResult> = runTool('push-data', ['--file', loadFile, '--batch-size', '50', '--master', master.address]);
    const applied = async (min: bigint) => {
      const f = (await status(master.address)).followers.find((x) => x.followerId === 1);
      return f && BigInt(f.appliedSeq) >= min ? BigInt(f.appliedSeq) : undefined;
    };
    await waitFor(() => applied(500n), 'follower 1 to apply some of the load');

    // The follower, mid-stream.
    f1.proc.signal('SIGINT');
    const fExit = await f1.proc.exit;
    assert.deepEqual(fExit, { code: 0, signal: null }, `follower exit; stderr: ${f1.proc.stderr}`);
    assert.ok(f1.proc.logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGINT'));
    const fStopped = f1.proc.logs.find((l) => l.msg === 'follower stopped');
    assert.ok(fStopped, 'the follower logs its stop after closing its store');
    const appliedAtStop = BigInt(fStopped.appliedSeq as string);
    assert.equal(fs.existsSync(path.join(f1Dir, 'endpoint.json')), false, 'endpoint file removed');
    assert.equal(f1.proc.stderr, '');
    // A new process opens the store at once: it reads the store, at the applied seq the follower reported.
    const read = await runTool('get-data', ['1', 'load-0', '--seq', '--data-root', root]);
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, 'v0\n');
    assert.match(read.stderr, new RegExp(`appliedSeq=${appliedAtStop}\\b.*via=store`));

    // The master, mid-load, while the follower is down.
    await waitFor(async () => BigInt((await status(master.address)).lastSeq) > appliedAtStop + 1_000n, 'writes to go on without the follower');
    master.proc.signal('SIGINT');
    const mExit = await master.proc.exit;
    assert.deepEqual(mExit, { code: 0, signal: null }, `master exit; stderr: ${master.proc.stderr}`);
    assert.ok(master.proc.logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGINT'));
    const mStopped = master.proc.logs.find((l) => l.msg === 'master stopped');
    assert.ok(mStopped, 'the master logs its stop after closing its store');
    const lastAtStop = BigInt(mStopped.lastSeq as string);
    assert.equal(fs.existsSync(path.join(masterDir, 'endpoint.json')), false, 'endpoint file removed');
    assert.equal(master.proc.stderr, '');
    // The load either finished first or was refused once the master stopped; everything it
    // was told is committed is at or below the master's last seq.
    const loaded = await load;
    const range = /seqs 1\.\.(\d+)/.exec(loaded.code === 0 ? loaded.stdout : loaded.stderr);
    assert.ok(loaded.code === 0 || loaded.code === 3, `push-data: ${loaded.code} ${loaded.stderr}`);
    assert.ok(range, `push-data says what it committed: ${loaded.stdout}${loaded.stderr}`);
    const acknowledged = BigInt(range[1]);
    t.diagnostic(`follower stopped at seq ${appliedAtStop}, master at ${lastAtStop}; push-data exit ${loaded.code}: ${(loaded.stdout + loaded.stderr).trim()}`);
    assert.ok(acknowledged <= lastAtStop, `acknowledged seq ${acknowledged}, master stopped at ${lastAtStop}`);

    // A new master process on the same data directory starts at once, at the same
    // position. (On a new free port: the old one, picked by the kernel, may have been
    // handed to another socket on this machine since.)
    master = await startMaster(masterDir);
    procs.push(master.proc);
    const address = master.address;
    const reopened = master.proc.logs.find((l) => l.msg === 'master store opened');
    assert.equal(reopened?.lastSeq, String(lastAtStop), 'the new master opened the store at the old position');
    assert.equal(reopened?.historyId, historyId, 'on the same history');
    assert.equal(BigInt((await status(address)).lastSeq), lastAtStop, 'nothing lost or added by the clean stop');
    // The follower comes back and resumes from exactly where it stopped, from the log.
    f1 = await startFollower(1, f1Dir, address, ['--audit-file', audit]);
    procs.push(f1.proc);
    const opened = await f1.proc.waitForLog('follower store opened');
    assert.equal(BigInt(opened.appliedSeq as string), appliedAtStop);
    const afterRestart = await runTool('push-data', ['after', 'restart', '--master', address]);
    assert.equal(afterRestart.stdout, `${lastAtStop + 1n}\n`, afterRestart.stderr);
    const final = await waitConverged(address, [1]);
    assert.equal(final, lastAtStop + 1n);
    assert.equal(f1.proc.hasLog('master is sending a snapshot'), false, 'resumed from the log, no snapshot');
    const dg = await runTool('store-digest', ['master', '1', '--json', '--data-root', root]);
    const [m, f] = dg.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(m.digest, f.digest);
    assert.equal(f.seq, String(final));
    assert.equal(m.keys, String(final), 'one distinct key per seq: none lost');

    // Both stop cleanly again; the follower's audit trail is one contiguous run across its restart.
    assert.deepEqual(await f1.proc.kill('SIGINT'), { code: 0, signal: null });
    assert.deepEqual(await master.proc.kill('SIGINT'), { code: 0, signal: null });
    const trail = fs.readFileSync(audit, 'utf8');
    assert.deepEqual(checkAudit(trail, final), []);
    assert.deepEqual(trail.split('\n').filter((l) => l.startsWith('open')), ['open 0', `open ${appliedAtStop}`]);
  });
});

describe('a follower whose port is taken', () => {
  it('--listen in use: exit 3, one line naming the address, no stack trace, no data directory left', async () => {
    const root = tempDir();
    const busy = await occupyPort();
    try {
      const dataDir = path.join(root, 'follower-1');
      const res = await runTool('follower-client', ['1', '--data-dir', dataDir, '--listen', busy.address, '--master', '127.0.0.1:1'], { env: { LR_LOG_LEVEL: 'silent' } });
      assertRefused(res, 3, 'ADDRESS_IN_USE');
      assert.match(res.stderr, new RegExp(`^follower-client: address ${busy.address.replace(/\./g, '\\.')} is already in use`));
      assert.equal(fs.existsSync(dataDir), false, 'a failed start leaves no new data directory');
    } finally {
      await busy.close();
    }
  });

  it('an existing follower keeps its store when its --listen or --metrics-listen port is taken', async () => {
    const root = tempDir();
    const master = await startMaster(path.join(root, 'master'));
    const dataDir = path.join(root, 'follower-1');
    const busy = await occupyPort();
    try {
      const f = await startFollower(1, dataDir, master.address);
      assert.equal((await runTool('push-data', ['k', 'v', '--master', master.address])).code, 0);
      await waitConverged(master.address, [1]);
      assert.equal((await f.proc.kill('SIGTERM')).code, 0);
      for (const flag of ['--listen', '--metrics-listen']) {
        const other = flag === '--listen' ? '--metrics-listen' : '--listen';
        const args = ['1', '--data-dir', dataDir, '--master', master.address, other, '127.0.0.1:0', flag, busy.address];
        const res = await runTool('follower-client', args, { env: { LR_LOG_LEVEL: 'silent' } });
        assertRefused(res, 3, 'ADDRESS_IN_USE');
        assert.ok(isStore(dataDir), `${flag}: the existing store is kept`);
        const got = await runTool('get-data', ['1', 'k', '--data-dir', dataDir]);
        assert.equal(got.stdout, 'v\n', `${flag}: the store is closed and intact: ${got.stderr}`);
      }
    } finally {
      await busy.close();
      await master.proc.kill('SIGKILL');
    }
  });
});

/**
 * A stop signal that arrives during start-up (here: as soon as the store is open, before
 * the server listens) is held until the node is up, which then stops cleanly: exit 0,
 * store closed. Caught only after start-up, it killed the process with its store open.
 */
describe('SIGTERM during start-up', () => {
  const root = tempDir();
  for (const tool of ['master-server', 'follower-client'] as const) {
    it(`${tool}: stops cleanly, and its store opens again at once`, async () => {
      const dataDir = path.join(root, tool === 'master-server' ? 'master' : 'follower-1');
      const args = tool === 'master-server' ? ['--data-dir', dataDir, '--listen', '127.0.0.1:0'] : ['1', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--master', '127.0.0.1:1'];
      const proc = new ServerProcess(tool, args);
      await proc.waitForLog(tool === 'master-server' ? 'master store opened' : 'follower store opened');
      const exit = await proc.kill('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null }, proc.stderr);
      assert.ok(proc.logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'));
      assert.ok(proc.logs.some((l) => l.msg === (tool === 'master-server' ? 'master stopped' : 'follower stopped')));
      const again = await runTool('store-digest', [tool === 'master-server' ? 'master' : '1', '--data-root', root, '--json']);
      assert.equal(again.code, 0, again.stderr);
    });
  }
});
