import fs from 'node:fs';
import { MutationKind } from '../../src/wire/entry-codec.js';
import type { NodeProcess } from '../../src/tools/harness/node-process.js';
import type { LoadGenerator } from './load.js';
import { readRollbackFiles } from './rollback-files.js';
import { countDivergent, readLog, readStore } from './stores.js';

/** The stopped nodes the oracles read: the master's data directory and each follower's. */
export interface StoresView {
  masterDir: string;
  /** auditFile: the follower's complete audit trail, if it has one (a node that was the master at some time has none). */
  followers: { id: number; dir: string; auditFile?: string }[];
}

export interface Verdict {
  /** Acknowledged writes missing (or with another value) on the master or any follower. */
  lost: number;
  /** Entries that differ between the master and a follower, summed over followers. */
  divergent: number;
  /** Every other broken rule, one line each (empty when all oracles hold). */
  problems: string[];
}

const SAMPLES = 5;

/**
 * Checks a scenario's outcome on the stopped cluster's stores, entry by entry:
 * (1) every acknowledged write is on the master and on every follower with its value, and
 *     the master's log entry at the acknowledged seq is that write; each writer's counter
 *     key holds its newest acknowledged value or a later attempted one (no lost update);
 *     no key is present that no writer sent (no phantom);
 * (2) every follower's store equals the master's, and its applied seq is the master's last;
 * (3) the follower's audit file, where it has a complete one, shows every seq applied
 *     exactly once, in order.
 */
export async function checkStores(view: StoresView, load: LoadGenerator, lastSeq: bigint): Promise<Verdict> {
  const problems: string[] = [];
  const master = await readStore(view.masterDir);
  const log = await readLog(view.masterDir);
  const followers = await Promise.all(view.followers.map(async (s) => ({ slot: s, store: await readStore(s.dir) })));

  // (1) acknowledged writes.
  const lostKeys = new Set<string>();
  const seqs = new Set<bigint>();
  const seqProblems: string[] = [];
  for (const w of load.acked) {
    if (seqs.has(w.seq)) seqProblems.push(`seq ${w.seq} acknowledged twice`);
    seqs.add(w.seq);
    if (master.data.get(w.key) !== w.value) lostKeys.add(`${w.key} (seq ${w.seq}) on the master`);
    for (const f of followers) if (f.store.data.get(w.key) !== w.value) lostKeys.add(`${w.key} (seq ${w.seq}) on follower ${f.slot.id}`);
    const entry = log.get(w.seq);
    if (entry) {
      const m = entry.mutations;
      const ok = m.length === 1 && m[0].kind === MutationKind.PUT && m[0].key.toString() === w.key && m[0].value?.toString() === w.value;
      if (!ok) seqProblems.push(`the master's log entry at acknowledged seq ${w.seq} is not the write of ${w.key}`);
    }
  }
  problems.push(...seqProblems.slice(0, SAMPLES));
  if (lostKeys.size > 0) problems.push(`lost acknowledged writes: ${[...lostKeys].slice(0, SAMPLES).join(', ')}`);
  const lost = new Set([...lostKeys].map((k) => k.slice(0, k.indexOf(' ')))).size;

  for (const c of load.counters) {
    const raw = master.data.get(c.key);
    const v = raw === undefined ? -1 : Number(raw);
    if (v < c.lastAcked || v > c.lastAttempted) {
      problems.push(`counter ${c.key} is ${raw} on the master, but its newest acknowledged value is ${c.lastAcked} (seq ${c.lastAckedSeq}) and the newest sent ${c.lastAttempted}`);
    }
  }
  const sent = new Map(load.acked.map((w) => [w.key, w.value]));
  for (const [k, v] of load.unacked) sent.set(k, v);
  for (const c of load.counters) sent.set(c.key, master.data.get(c.key) ?? '');
  const phantoms = [...master.data].filter(([k, v]) => sent.get(k) !== v).map(([k]) => k);
  if (phantoms.length > 0) problems.push(`${phantoms.length} entries on the master that no writer sent: ${phantoms.slice(0, SAMPLES).join(', ')}`);

  // (2) followers equal the master.
  let divergent = 0;
  for (const f of followers) {
    const d = countDivergent(master.data, f.store.data);
    if (d > 0) problems.push(`follower ${f.slot.id} differs from the master in ${d} entries`);
    divergent += d;
    if (f.store.appliedSeq !== lastSeq) problems.push(`follower ${f.slot.id} applied seq ${f.store.appliedSeq}, the master's last seq is ${lastSeq}`);
    // (3) the audit trail.
    if (f.slot.auditFile === undefined) continue;
    const audit = fs.existsSync(f.slot.auditFile) ? fs.readFileSync(f.slot.auditFile, 'utf8') : '';
    const rolledBack = readRollbackFiles(f.slot.dir).map((r) => ({ fromSeq: r.fromSeq, toSeq: r.toSeq }));
    for (const p of checkAudit(audit, f.store.appliedSeq ?? 0n, rolledBack).slice(0, SAMPLES)) problems.push(`follower ${f.slot.id} audit: ${p}`);
  }
  return { lost, divergent, problems };
}

/**
 * Checks a follower's audit trail (see src/follower/apply-audit.ts): each `apply a b`
 * starts at exactly the previous position + 1; each `open n` is at or past the previous
 * position (a crash may lose the newest line, never undo a commit); each `snapshot s`
 * too, unless the follower wrote a rollback file of exactly the entries it had past the
 * fork (`rolledBack`: fromSeq..toSeq with toSeq its position then, the snapshot at or past
 * the fork seq fromSeq - 1): after a promotion a follower that had entries the new
 * master's history lacks is moved back to the fork by design (docs/roles.md); the trail
 * ends at the store's applied seq. Returns the violations.
 */
export function checkAudit(text: string, finalSeq: bigint, rolledBack: readonly { fromSeq: bigint; toSeq: bigint }[] = []): string[] {
  const out: string[] = [];
  let pos: bigint | undefined;
  const lines = text.split('\n').filter((l) => l !== '');
  lines.forEach((line, i) => {
    const [what, a, b] = line.split(' ');
    const where = `line ${i + 1} "${line}"`;
    if (what === 'open') {
      const n = BigInt(a);
      if (pos !== undefined && n < pos) out.push(`${where}: store reopened at seq ${n}, behind seq ${pos} it had applied`);
      pos = n;
    } else if (what === 'snapshot') {
      // A snapshot replaces the data wholesale; on one history it only ever moves forward,
      // back only to a fork whose entries the follower put in a rollback file first.
      const n = BigInt(a);
      const at = pos;
      if (at === undefined) out.push(`${where}: snapshot installed before the store was opened`);
      else if (n < at && !rolledBack.some((r) => r.toSeq === at && n >= r.fromSeq - 1n)) out.push(`${where}: a snapshot moved the store back from seq ${at} to seq ${n}`);
      pos = n;
    } else if (what === 'apply') {
      const first = BigInt(a);
      const last = BigInt(b);
      if (pos === undefined) out.push(`${where}: applied before the store was opened`);
      else if (first <= pos) out.push(`${where}: seqs ${first}..${last < pos ? last : pos} applied twice`);
      else if (first > pos + 1n) out.push(`${where}: seqs ${pos + 1n}..${first - 1n} skipped`);
      if (last < first) out.push(`${where}: range runs backwards`);
      pos = last;
    } else {
      out.push(`${where}: unknown record`);
    }
  });
  if (pos === undefined) out.push('no audit records at all');
  else if (pos !== finalSeq) out.push(`trail ends at seq ${pos}, the store has applied seq ${finalSeq}`);
  return out;
}

/**
 * Contract 9 of the README: a follower logs each distinct failure once, not once per
 * retry. Two equal failure lines (code and message, ignoring grpc-js's timestamps) with
 * no successful connection between them break it. Requests its own server refused
 * ("request refused": a write sent to it while a follower, or while a deposed master) are
 * not its failures: contract 13 logs every one of them once.
 */
export function checkFollowerLogs(history: readonly { name: string; proc: NodeProcess }[]): string[] {
  const out: string[] = [];
  for (const { name, proc } of history) {
    if (!name.startsWith('follower')) continue;
    let previous = '';
    let repeats = 0;
    for (const l of proc.logs) {
      if (l.msg?.startsWith('connected to master') || l.msg === 'master is sending a snapshot') previous = '';
      if (typeof l.code !== 'string' || typeof l.level !== 'number' || l.level < 40 || l.msg === 'request refused') continue;
      const failure = `${l.code}: ${String(l.msg).replace(/ ?\(\d{4}-\d\d-\d\dT[\d:.]+Z?\)/g, '')}`;
      if (failure === previous) repeats++;
      previous = failure;
    }
    if (repeats > 0) out.push(`${name} logged the same failure again ${repeats} times without reconnecting in between (contract 9: once)`);
  }
  return out;
}
