import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAudit } from '../helpers/oracles.js';

// The fault scenarios trust this oracle to find double and skipped applies: it must fail.
describe('audit trail check', () => {
  it('accepts contiguous ranges across reopens, including a lost last line before a crash', () => {
    assert.deepEqual(checkAudit('open 0\napply 1 5\napply 6 9\nopen 9\napply 10 10\n', 10n), []);
    // Killed after committing 11..12 but before auditing them: the next open is past the trail.
    assert.deepEqual(checkAudit('open 0\napply 1 10\nopen 12\napply 13 20\n', 20n), []);
    // A snapshot moves the position forward past a trimmed log; the log follows it.
    assert.deepEqual(checkAudit('open 0\nsnapshot 55\napply 56 60\nopen 60\nsnapshot 900\napply 901 905\n', 905n), []);
  });

  it('finds seqs applied twice, skipped, or a store that went backwards', () => {
    assert.match(checkAudit('open 0\napply 1 5\napply 5 8\n', 8n).join(), /seqs 5\.\.5 applied twice/);
    assert.match(checkAudit('open 0\napply 1 5\napply 7 8\n', 8n).join(), /seqs 6\.\.6 skipped/);
    assert.match(checkAudit('open 0\napply 1 5\nopen 3\napply 4 8\n', 8n).join(), /reopened at seq 3, behind seq 5/);
    assert.match(checkAudit('apply 1 5\n', 5n).join(), /before the store was opened/);
    assert.match(checkAudit('open 0\nsnapshot 50\napply 51 60\nsnapshot 40\napply 41 70\n', 70n).join(), /moved the store back from seq 60 to seq 40/);
  });

  it('requires the trail to end at the store\'s applied seq', () => {
    assert.match(checkAudit('open 0\napply 1 5\n', 6n).join(), /trail ends at seq 5, the store has applied seq 6/);
    assert.match(checkAudit('', 0n).join(), /no audit records/);
  });
});
