import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describedAs, FOLLOWER_ROLE_OPTIONS, followerRoleSettings, MASTER_ROLE_OPTIONS, masterRoleSettings } from '../../src/tools/role-options.js';

/** The parsed values of specs as the option parser leaves them: each default through its parse. */
function parsedDefaults(specs: typeof MASTER_ROLE_OPTIONS, over: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = name in over ? over[name] : spec.default;
    out[name] = spec.parse ? spec.parse(raw, `--${name}`) : raw;
  }
  return out;
}

describe('role options shared by master-server and follower-client', () => {
  it('the master role settings come from the options, with the command\'s own --retain-entries', () => {
    const argv = parsedDefaults(MASTER_ROLE_OPTIONS, { 'ack-followers': '1', 'ack-timeout-ms': '700', 'retain-age-ms': '60000', 'min-followers': '2', 'heartbeat-interval-ms': '250' });
    assert.deepEqual(masterRoleSettings(argv, 500), {
      maxGroupEntries: 10_000,
      heartbeatIntervalMs: 250,
      retention: { retainEntries: 500n, retainAgeMs: 60_000, retainBytes: 0, slotMaxLagEntries: 10_000_000n, slotMaxLagBytes: 1024 ** 3, trimIntervalMs: 1_000 },
      ack: { followers: 1, timeoutMs: 700 },
      gate: { minFollowers: 2, maxLagMs: 10_000 },
    });
  });

  it('the follower role settings come from the options', () => {
    assert.deepEqual(followerRoleSettings(parsedDefaults(FOLLOWER_ROLE_OPTIONS, { 'heartbeat-timeout-ms': '1500' })), { heartbeatTimeoutMs: 1_500, progressIntervalMs: 5_000 });
  });

  it('a bad value is refused naming the flag, as in either command', () => {
    assert.throws(() => parsedDefaults(MASTER_ROLE_OPTIONS, { 'ack-followers': '-1' }), /--ack-followers must be an integer from 0 to 10000, got "-1"/);
    assert.throws(() => parsedDefaults(FOLLOWER_ROLE_OPTIONS, { 'progress-interval-ms': '0' }), /--progress-interval-ms must be a positive integer/);
  });

  it('describedAs changes only the words: flag, variable, default and parse stay the one definition', () => {
    const noted = describedAs(MASTER_ROLE_OPTIONS, 'takes effect once promoted', { 'heartbeat-interval-ms': 'another text' });
    assert.deepEqual(Object.keys(noted), Object.keys(MASTER_ROLE_OPTIONS));
    for (const [name, spec] of Object.entries(MASTER_ROLE_OPTIONS)) {
      const { describe: text, ...rest } = noted[name];
      const { describe: original, ...same } = spec;
      assert.deepEqual(rest, same, name);
      assert.equal(text, name === 'heartbeat-interval-ms' ? 'another text' : `${original}; takes effect once promoted`);
    }
  });
});
