import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SCENARIOS } from '../helpers/fault-scenarios.js';
import { formatResult } from '../helpers/fault-report.js';
import { runScenario } from '../helpers/scenario-runner.js';

/**
 * The short version of every fault-injection scenario (npm run test:faults runs the long
 * one). Each scenario gets a fresh cluster, a few seconds of faults under continuous load,
 * and every oracle. LR_FAULTS_SEED repeats a run's random choices.
 */
const DURATION_MS = Number(process.env.LR_FAULTS_SHORT_MS ?? 5_000);
const SEED = Number(process.env.LR_FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe(`fault injection, short (seed ${SEED})`, () => {
  for (const def of SCENARIOS) {
    it(`scenario ${def.id}: ${def.title}`, { timeout: 240_000 }, async (t) => {
      const result = await runScenario(def, { durationMs: DURATION_MS, seed: SEED + Number(def.id) });
      if (result.skipped) return t.skip(result.skipped);
      for (const line of formatResult(result).split('\n')) t.diagnostic(line);
      assert.deepEqual(result.problems, [], `seed ${SEED}: ${formatResult(result)}`);
      assert.equal(result.lost, 0);
      assert.equal(result.divergent, 0);
      assert.ok(result.faults > 0, 'no fault was injected');
      assert.ok(result.acked > 0, 'no write was acknowledged');
    });
  }
});
