#!/usr/bin/env node
/**
 * The build behind `npm run build`, `prepare` (so `npm install`) and `npm test`:
 * TypeScript types from protos/ into src/wire/generated, then tsc into dist/.
 *
 * - Up to date: dist/.build-stamp holds a hash of everything the build reads (src/
 *   including the generated types, protos/, tsconfig.json, package.json, this script, the
 *   versions of typescript and @grpc/proto-loader). When it matches and every command of
 *   package.json "bin" is there, the build does nothing and takes a few tens of ms.
 * - One at a time: a build holds the lock directory .build.lock/ (with its pid inside);
 *   a second build started meanwhile waits for it, then finds dist/ up to date. A lock
 *   whose pid is gone is taken over.
 * - Whole: tsc writes into dist.next/, which replaces dist/ by rename when it is
 *   complete, so a command started during a build never loads a half-written tree.
 *
 * `--force` rebuilds even when dist/ is up to date.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const at = (...p) => path.join(root, ...p);
const DIST = at('dist');
const NEXT = at('dist.next');
const OLD = at('dist.old');
const GENERATED = at('src', 'wire', 'generated');
const STAMP = '.build-stamp';
const LOCK = at('.build.lock');
const LOCK_WAIT_MS = 10 * 60_000;
const GEN_ARGS = [
  '--longs=String', '--enums=String', '--defaults', '--oneofs', '--includeComments',
  '--grpcLib=@grpc/grpc-js', '-O', '<out>', 'protos/replicator.proto',
];

const force = process.argv.includes('--force');
const say = (msg) => process.stderr.write(`build: ${msg}\n`);
const pkg = JSON.parse(fs.readFileSync(at('package.json'), 'utf8'));
const bins = Object.values(pkg.bin ?? {});

function listFiles(dir, out = []) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT') return out;
    throw e;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) listFiles(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function versionOf(name) {
  try {
    return JSON.parse(fs.readFileSync(at('node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'missing';
  }
}

/** The hash of everything the build reads; the generated types count as input too. */
function inputsHash() {
  const h = crypto.createHash('sha256');
  h.update(`typescript ${versionOf('typescript')}\nproto-loader ${versionOf('@grpc/proto-loader')}\n${GEN_ARGS.join(' ')}\n`);
  const files = [
    ...listFiles(at('src')),
    ...listFiles(at('protos')),
    at('tsconfig.json'),
    at('package.json'),
    fileURLToPath(import.meta.url),
  ].map((f) => path.relative(root, f).split(path.sep).join('/')).sort();
  for (const rel of files) {
    h.update(`${rel}\0`);
    h.update(fs.readFileSync(at(rel)));
    h.update('\0');
  }
  return h.digest('hex');
}

function upToDate() {
  if (force) return false;
  let stamp;
  try {
    stamp = fs.readFileSync(path.join(DIST, STAMP), 'utf8').trim();
  } catch {
    return false;
  }
  if (!fs.existsSync(path.join(GENERATED, 'replicator.ts'))) return false;
  if (!bins.every((b) => fs.existsSync(at(b)))) return false;
  return stamp === inputsHash();
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function acquireLock() {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let told = false;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      fs.writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    let age = 0;
    try {
      owner = Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8'));
    } catch {
      // The owner made the directory and has not written its pid yet, or just left.
      try {
        age = Date.now() - fs.statSync(LOCK).mtimeMs;
      } catch {
        continue;
      }
    }
    const stale = Number.isInteger(owner) ? !alive(owner) : age > 30_000;
    if (stale) {
      say(`taking over the lock of a build that is gone (${Number.isInteger(owner) ? `pid ${owner}` : 'no pid'})`);
      fs.rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another build (pid ${owner}) still holds ${path.relative(root, LOCK)}`);
    if (!told) {
      say(`waiting for the build already running (pid ${Number.isInteger(owner) ? owner : '?'})`);
      told = true;
    }
    sleep(100);
  }
}

function releaseLock() {
  fs.rmSync(LOCK, { recursive: true, force: true });
}

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    throw new Error(`${path.basename(args[0])} failed (${r.signal ?? `exit ${r.status}`})`);
  }
}

function build() {
  // Leftovers of a build that was killed: only the lock holder gets here, so none is live.
  fs.rmSync(NEXT, { recursive: true, force: true });
  fs.rmSync(OLD, { recursive: true, force: true });

  // 1. The proto types: generated aside, then put in place whole.
  const genBin = path.join(
    at('node_modules', '@grpc', 'proto-loader'),
    JSON.parse(fs.readFileSync(at('node_modules', '@grpc', 'proto-loader', 'package.json'), 'utf8')).bin['proto-loader-gen-types'],
  );
  const genOut = path.join(NEXT, '.generated');
  run([genBin, ...GEN_ARGS.map((a) => (a === '<out>' ? genOut : a))]);
  if (fs.existsSync(GENERATED)) fs.renameSync(GENERATED, path.join(NEXT, '.generated-old'));
  fs.renameSync(genOut, GENERATED);
  fs.rmSync(path.join(NEXT, '.generated-old'), { recursive: true, force: true });

  // 2. tsc into dist.next/ (a sibling of dist/, so the source maps' relative paths hold).
  const stamp = inputsHash();
  run([at('node_modules', 'typescript', 'bin', 'tsc'), '-p', root, '--outDir', NEXT]);
  for (const b of bins) fs.chmodSync(path.join(NEXT, path.relative('dist', b)), 0o755);
  fs.writeFileSync(path.join(NEXT, STAMP), `${stamp}\n`);

  // 3. Swap it in.
  if (fs.existsSync(DIST)) fs.renameSync(DIST, OLD);
  fs.renameSync(NEXT, DIST);
  fs.rmSync(OLD, { recursive: true, force: true });
}

function main() {
  if (upToDate()) {
    say('dist/ is up to date');
    return;
  }
  acquireLock();
  try {
    if (upToDate()) {
      say('dist/ is up to date (built by the build we waited for)');
      return;
    }
    const started = Date.now();
    build();
    say(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    releaseLock();
  }
}

try {
  main();
} catch (e) {
  say(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
}
