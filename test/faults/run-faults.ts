/**
 * npm run test:faults — the long version of every fault-injection scenario.
 *
 *   LR_FAULTS_DURATION_S  seconds of faults per scenario (default 30)
 *   LR_FAULTS_SCENARIOS   comma-separated scenario ids to run (default: all)
 *   LR_FAULTS_SEED        seed of the random choices, to repeat a run (default: random)
 *   LR_FAULTS_KEEP        keep each scenario's directory (stores, audit files) for inspection
 *
 * Prints per scenario: writes acknowledged, writes lost (must be 0), divergent entries
 * (must be 0), and the time to converge after the last fault; exits 1 if any scenario
 * broke a rule.
 */
import { SCENARIOS } from '../helpers/fault-scenarios.js';
import { formatResult } from '../helpers/fault-report.js';
import { runScenario, type ScenarioResult } from '../helpers/scenario-runner.js';

const durationS = Number(process.env.LR_FAULTS_DURATION_S ?? 30);
if (!(durationS > 0)) {
  process.stderr.write(`test:faults: LR_FAULTS_DURATION_S must be a positive number of seconds, got ${JSON.stringify(process.env.LR_FAULTS_DURATION_S)}\n`);
  process.exit(2);
}
const only = process.env.LR_FAULTS_SCENARIOS?.split(',').map((s) => s.trim()).filter(Boolean);
const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
if (unknown.length > 0) {
  process.stderr.write(`test:faults: no scenario ${unknown.join(', ')}; scenarios are ${SCENARIOS.map((s) => s.id).join(', ')}\n`);
  process.exit(2);
}
const seed = Number(process.env.LR_FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const verbose = Boolean(process.env.LR_FAULTS_VERBOSE);

console.log(`fault injection: ${durationS} s of faults per scenario, seed ${seed} (LR_FAULTS_SEED=${seed} repeats this run)`);
const results: ScenarioResult[] = [];
for (const def of SCENARIOS.filter((s) => !only || only.includes(s.id))) {
  console.log(`\nscenario ${def.id}: ${def.title}`);
  const t0 = Date.now();
  const r = await runScenario(def, {
    durationMs: durationS * 1000,
    seed: seed + Number(def.id),
    log: verbose ? (line) => console.log(`  ${line}`) : undefined,
  });
  results.push(r);
  console.log(`${formatResult(r)}\n  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

console.log('\nscenario  faults  acknowledged  lost  divergent  converge_ms  result');
for (const r of results) {
  const verdict = r.skipped ? 'skipped' : r.problems.length === 0 && r.lost === 0 && r.divergent === 0 ? 'ok' : 'FAILED';
  console.log(
    `${r.id.padEnd(8)}  ${String(r.faults).padStart(6)}  ${String(r.acked).padStart(12)}  ${String(r.lost).padStart(4)}  ${String(r.divergent).padStart(9)}  ${String(r.convergeMs).padStart(11)}  ${verdict}`,
  );
}
process.exitCode = results.some((r) => !r.skipped && (r.problems.length > 0 || r.lost > 0 || r.divergent > 0)) ? 1 : 0;
