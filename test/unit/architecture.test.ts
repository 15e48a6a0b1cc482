import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

/**
 * The folder layout is the architecture, and this test keeps it honest: it reads every
 * import of every file under src/ and checks the dependency directions the README draws.
 *
 *   common  <-  coordination  <-  wire  <-  storage  <-  master, follower  <-  node  <-  tools
 *
 * coordination (etcd: leader lease, fencing, member records) is shared code that needs only
 * common, so every role and tool may use it and it can never reach into a role.
 * A layer may import its own folder and the layers to its left, never to its right, and
 * master and follower never import each other. Tools reach the roles only through their
 * start functions and published defaults (ENTRY_POINTS), never their internals.
 */
const SRC = path.resolve(import.meta.dirname, '../../src');

const LAYER: Record<string, number> = { common: 0, coordination: 1, wire: 2, storage: 3, master: 4, follower: 4, node: 5, tools: 6 };

/** The files of master and follower that tools may import: what starts a node, and its documented defaults. */
const ENTRY_POINTS = new Set([
  'master/master-node.ts',
  'master/ack-policy.ts',
  'master/write-gate.ts',
  'follower/follower-node.ts',
  'follower/progress.ts',
]);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'generated') out.push(...sourceFiles(p));
    } else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every relative import (static, dynamic, and type-only: a type import is a dependency too). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = path.resolve(path.dirname(file), m[1]).replace(/\.js$/, '.ts');
    out.push(path.relative(SRC, target));
  }
  return out;
}

function topFolder(rel: string): string {
  return rel.split(path.sep)[0];
}

/** Whether a file of src/ (path relative to src) may not import `to`. */
function violates(from: string, to: string): boolean {
  const fromLayer = topFolder(from);
  const toLayer = topFolder(to);
  if (toLayer === fromLayer) return false;
  if (LAYER[toLayer] > LAYER[fromLayer]) return true;
  if (LAYER[toLayer] === LAYER[fromLayer]) return true; // master <-> follower
  return fromLayer === 'tools' && (toLayer === 'master' || toLayer === 'follower') && !ENTRY_POINTS.has(to);
}

describe('architecture: dependency directions', () => {
  const files = sourceFiles(SRC);

  it('finds the layers', () => {
    const folders = new Set(files.map((f) => topFolder(path.relative(SRC, f))));
    for (const layer of Object.keys(LAYER)) assert.ok(folders.has(layer), `src/${layer} exists`);
    for (const folder of folders) assert.ok(folder in LAYER, `src/${folder} is a known layer (add it to LAYER and the README's Architecture)`);
  });

  it('no layer imports a layer to its right, master and follower never import each other', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = path.relative(SRC, file);
      for (const to of importsOf(file)) if (violates(from, to)) violations.push(`${from} -> ${to}`);
    }
    assert.deepEqual(violations, []);
  });

  it('the rule itself: what it allows and what it refuses', () => {
    assert.equal(violates('storage/level-log.ts', 'wire/entry-codec.ts'), false);
    assert.equal(violates('master/subscription.ts', 'storage/interfaces.ts'), false);
    assert.equal(violates('tools/master-server.ts', 'master/master-node.ts'), false);
    assert.equal(violates('wire/store-service.ts', 'storage/layout.ts'), true);
    assert.equal(violates('common/config.ts', 'wire/seq.ts'), true);
    assert.equal(violates('follower/subscriber.ts', 'master/subscription.ts'), true);
    assert.equal(violates('tools/node-access.ts', 'master/group-commit.ts'), true);
    assert.equal(violates('master/write-gate.ts', 'coordination/leader-lease.ts'), false);
    assert.equal(violates('coordination/leader-lease.ts', 'common/errors.ts'), false);
    assert.equal(violates('coordination/leader-lease.ts', 'master/write-gate.ts'), true);
    assert.equal(violates('coordination/member-registry.ts', 'follower/progress.ts'), true);
    assert.equal(violates('coordination/leader-lease.ts', 'node/node-runner.ts'), true);
    // Imports are found in every form, type-only ones included.
    assert.ok(importsOf(path.join(SRC, 'storage/interfaces.ts')).some((t) => topFolder(t) === 'wire'));
  });
});
