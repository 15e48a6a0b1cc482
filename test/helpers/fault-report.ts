import type { ScenarioResult } from './scenario-runner.js';

/** One line per scenario: the numbers the issue asks for, then notes and problems indented. */
export function formatResult(r: ScenarioResult): string {
  if (r.skipped) return `scenario ${r.id}: SKIPPED — ${r.skipped}`;
  const head =
    `scenario ${r.id}: ${r.problems.length === 0 ? 'ok' : 'FAILED'} — faults ${r.faults}, writes acknowledged ${r.acked}, ` +
    `writes lost ${r.lost}, divergent entries ${r.divergent}, converged ${r.convergeMs} ms after the last fault ` +
    `(last seq ${r.lastSeq}, failed writes ${r.failed}, of which timed out ${r.timedOut})`;
  return [head, ...r.notes.map((n) => `    note: ${n}`), ...r.problems.map((p) => `    PROBLEM: ${p}`)].join('\n');
}
