import type { LoadGenerator } from './load.js';
import { readRollbackFiles } from './rollback-files.js';
import type { TimedWriter } from './timed-writer.js';

const SAMPLES = 5;

/** What rollbackProblems found: the files and entries per node, and every rolled-back write that had been acknowledged. */
export interface RollbackReport {
  summary: string;
  problems: string[];
}

/**
 * The rollback files of stopped nodes against the ledgers of everything acknowledged: a
 * rolled-back entry must hold no acknowledged write — neither by its epoch and seq, nor by
 * key and value (each key is written once; a load's counter key once per value). A write
 * acknowledged and then rolled back is exactly the loss failover must never cause.
 */
export function rollbackProblems(nodes: readonly { id: number; dir: string }[], load: LoadGenerator): RollbackReport {
  const acked = new Map(load.acked.map((w) => [w.key, w.value]));
  const ackedAt = new Set(load.acked.map((w) => `${w.epoch}@${w.seq}`));
  const counters = new Map(load.counters.map((c) => [c.key, c]));
  const problems: string[] = [];
  const perNode: string[] = [];
  for (const node of nodes) {
    const files = readRollbackFiles(node.dir);
    let entries = 0;
    for (const f of files) {
      const name = f.file.slice(f.file.lastIndexOf('/') + 1);
      for (const e of f.entries) {
        entries++;
        if (ackedAt.has(`${e.epoch}@${e.seq}`)) problems.push(`node ${node.id} ${name}: seq ${e.seq} of epoch ${e.epoch} was acknowledged`);
        for (const m of e.mutations) {
          if (m.op !== 'put') continue;
          const counter = counters.get(m.key);
          if (counter ? counter.ackedValues.has(Number(m.value)) : acked.get(m.key) === m.value) {
            problems.push(`node ${node.id} ${name}: ${m.key}=${m.value} (seq ${e.seq}) was acknowledged`);
          }
        }
      }
    }
    if (files.length > 0) perNode.push(`node ${node.id}: ${files.length} file(s), ${entries} entries`);
  }
  return { summary: `rollback files: ${perNode.join('; ') || 'none'}`, problems: problems.slice(0, SAMPLES * 4) };
}

/**
 * Adds a timed writer's answers to a load's ledger, so the store oracles (checkStores,
 * rollbackProblems) judge its writes too: an acknowledged one must be in the final history
 * at its seq, an unacknowledged one may or may not be there, and nothing else may.
 */
export function addToLedger(load: LoadGenerator, writer: TimedWriter): void {
  for (const a of writer.answers) {
    if (a.acked) load.acked.push({ key: a.key, value: a.value, seq: a.seq!, epoch: a.epoch! });
    else load.unacked.set(a.key, a.value);
  }
}
