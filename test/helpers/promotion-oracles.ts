import type { LoadGenerator } from './load.js';
import { readRollbackFiles } from './rollback-files.js';
import { readStore } from './stores.js';

const SAMPLES = 5;

/** What the rollback oracle reads of a stopped cluster whose master moved: every node's data directory, and the final master's. */
export interface RollbackView {
  readonly nodes: ReadonlyMap<number, { readonly id: number; readonly dir: string }>;
  readonly master: { readonly dir: string };
}

/**
 * The rollback files of every node of a stopped cluster after promotions, against the
 * load's final ledger and the final master's store. Every key the load writes is sent
 * exactly once (a counter key once per value), so a rolled-back put names exactly one
 * write:
 * - it was never acknowledged (neither by key and value, nor by its epoch and seq): an
 *   acknowledged write must be in every later history, never rolled back;
 * - some writer sent it (a rollback file holds nothing but the node's own entries);
 * - it is not on the final master: its only copy was on a history the cluster left, so a
 *   rolled-back write found in the final history means the fork was put in the wrong place;
 * - each file's header and entries agree: entries fromSeq..toSeq in order (fromSeq =
 *   forkSeq + 1), all of the old epoch, which is older than the new one.
 */
export async function checkRollbacks(cluster: RollbackView, load: LoadGenerator, report: { note(text: string): void; problem(text: string): void }): Promise<void> {
  const acked = new Map(load.acked.map((w) => [w.key, w]));
  const ackedAt = new Set(load.acked.map((w) => `${w.epoch}@${w.seq}`));
  const counters = new Map(load.counters.map((c) => [c.key, c]));
  const finalData = (await readStore(cluster.master.dir)).data;
  const bad = { acked: [] as string[], phantom: [] as string[], surviving: [] as string[], format: [] as string[] };
  const perNode: string[] = [];
  for (const node of cluster.nodes.values()) {
    const files = readRollbackFiles(node.dir);
    let entries = 0;
    for (const f of files) {
      const name = f.file.slice(f.file.lastIndexOf('/') + 1);
      if (f.fromSeq !== f.forkSeq + 1n || f.epoch >= f.newEpoch) bad.format.push(`${name}: header fork ${f.forkSeq}, range ${f.fromSeq}..${f.toSeq}, epoch ${f.epoch} -> ${f.newEpoch}`);
      let next = f.missing ? undefined : f.fromSeq;
      for (const e of f.entries) {
        entries++;
        if (next !== undefined && e.seq !== next) bad.format.push(`${name}: entry seq ${e.seq}, expected ${next}`);
        next = e.seq + 1n;
        if (e.epoch !== f.epoch) bad.format.push(`${name}: entry ${e.seq} of epoch ${e.epoch} in a file of epoch ${f.epoch}`);
        if (ackedAt.has(`${e.epoch}@${e.seq}`)) bad.acked.push(`${name}: seq ${e.seq} of epoch ${e.epoch} was acknowledged`);
        for (const m of e.mutations) {
          const where = `${m.key}=${m.value} (node ${node.id}, ${name}, seq ${e.seq})`;
          const counter = counters.get(m.key);
          const w = acked.get(m.key);
          if (m.op !== 'put') bad.phantom.push(`a delete of ${m.key} (node ${node.id}, ${name})`);
          else if (counter) {
            const v = Number(m.value);
            if (counter.ackedValues.has(v)) bad.acked.push(where);
            if (!(v >= 0 && v <= counter.lastAttempted)) bad.phantom.push(where);
          } else if (w?.value === m.value) bad.acked.push(where);
          else if (load.unacked.get(m.key) !== m.value) bad.phantom.push(where);
          if (m.op === 'put' && finalData.get(m.key) === m.value) bad.surviving.push(where);
        }
      }
      if (next !== undefined && next !== f.toSeq + 1n) bad.format.push(`${name}: entries end before seq ${next}, the header says ${f.toSeq}`);
    }
    if (files.length > 0) perNode.push(`node ${node.id}: ${files.length} file(s), ${entries} entries`);
  }
  report.note(`rollback files: ${perNode.join('; ') || 'none'}`);
  if (bad.acked.length > 0) report.problem(`${bad.acked.length} acknowledged writes in rollback files: ${bad.acked.slice(0, SAMPLES).join(', ')}`);
  if (bad.phantom.length > 0) report.problem(`${bad.phantom.length} rolled-back writes no writer sent: ${bad.phantom.slice(0, SAMPLES).join(', ')}`);
  if (bad.surviving.length > 0) report.problem(`${bad.surviving.length} rolled-back writes are on the final master too: ${bad.surviving.slice(0, SAMPLES).join(', ')}`);
  if (bad.format.length > 0) report.problem(`rollback files disagree with their headers: ${bad.format.slice(0, SAMPLES).join(', ')}`);
}
