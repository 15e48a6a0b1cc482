import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, type ReplicatorError } from '../../src/common/errors.js';
import {
  epochOf,
  forkSeq,
  formatHistory,
  INITIAL_HISTORY,
  lastEpoch,
  parseHistory,
  sameHistory,
  startEpoch,
  validateHistory,
  type EpochHistory,
} from '../../src/storage/epoch-history.js';

/** `h('1@1 2@101')`: a history from its short form. */
const h = (s: string): EpochHistory =>
  s.split(' ').map((p) => {
    const [epoch, firstSeq] = p.split('@');
    return { epoch: Number(epoch), firstSeq: BigInt(firstSeq) };
  });
const code = (c: ErrorCode) => (err: unknown) => (err as ReplicatorError).code === c;

describe('epoch history', () => {
  it('INITIAL_HISTORY is epoch 1 from seq 1, and frozen', () => {
    assert.deepEqual(INITIAL_HISTORY, [{ epoch: 1, firstSeq: 1n }]);
    assert.throws(() => (INITIAL_HISTORY as { epoch: number; firstSeq: bigint }[]).push({ epoch: 2, firstSeq: 5n }));
  });

  it('epochOf: the last epoch starting at or before seq; the first epoch for seq 0', () => {
    const x = h('1@1 2@101 4@101 5@300');
    assert.equal(epochOf(x, 0n), 1);
    assert.equal(epochOf(x, 1n), 1);
    assert.equal(epochOf(x, 100n), 1);
    assert.equal(epochOf(x, 101n), 4, 'epoch 2 committed nothing before epoch 4 began');
    assert.equal(epochOf(x, 299n), 4);
    assert.equal(epochOf(x, 300n), 5);
    assert.equal(epochOf(x, 10n ** 15n), 5);
    assert.equal(epochOf(h('3@1'), 0n), 3);
    assert.equal(lastEpoch(x), 5);
  });

  describe('forkSeq', () => {
    it('identical histories never disagree', () => {
      assert.equal(forkSeq(INITIAL_HISTORY, INITIAL_HISTORY), undefined);
      assert.equal(forkSeq(h('1@1 2@101 3@250'), h('1@1 2@101 3@250')), undefined);
    });

    it('a follower still on the old epoch, behind the promotion point, forks at the promotion point (it streams on)', () => {
      // Promoted at applied seq 100: epoch 2 from 101. The follower is at seq 60 of epoch 1.
      const fork = forkSeq(h('1@1'), h('1@1 2@101'));
      assert.equal(fork, 100n);
      assert.ok(60n <= fork!, 'A <= F: the ordinary checks decide');
      assert.equal(forkSeq(h('1@1 2@101'), h('1@1')), 100n, 'symmetric');
    });

    it('a deposed master with entries past the fork is told to roll back F+1..A', () => {
      // The old master of epoch 1 wrote up to 130; the new master was promoted at 100.
      const fork = forkSeq(h('1@1'), h('1@1 2@101'));
      assert.ok(130n > fork!, 'A > F: diverged');
      // The same after a second promotion that the deposed master never saw either.
      assert.equal(forkSeq(h('1@1'), h('1@1 2@101 3@200')), 100n);
    });

    it('one history has an extra epoch the other never saw', () => {
      // b was promoted at 49 (epoch 2), then c at 79 (epoch 3); a follower of c saw only epoch 3.
      assert.equal(forkSeq(h('1@1 2@50 3@80'), h('1@1 3@80')), 49n);
      // Two masters promoted from the same epoch at different seqs: the earlier point wins.
      assert.equal(forkSeq(h('1@1 2@50 4@90'), h('1@1 2@50 3@70')), 69n);
      // An epoch that committed nothing (it shares its firstSeq with the next) changes nothing.
      assert.equal(forkSeq(h('1@1 2@50 3@50'), h('1@1 3@50')), undefined);
      // Histories that disagree from the very first seq.
      assert.equal(forkSeq(h('2@1'), h('1@1')), 0n);
    });

    it('a follower that adopted the newest history agrees with its upstream everywhere', () => {
      assert.equal(forkSeq(h('1@1 2@101 3@250'), h('1@1 2@101 3@250')), undefined);
      assert.equal(forkSeq(h('1@1 2@101'), h('1@1 2@101 3@250')), 249n, 'later epochs are a fork only past their start');
    });
  });

  it('validateHistory refuses empty lists, a first epoch not at seq 1, non-increasing epochs, decreasing seqs, bad numbers', () => {
    for (const ok of ['1@1', '1@1 2@1', '1@1 2@5 3@5 7@9', '4294967295@1']) validateHistory(h(ok));
    const bad: [EpochHistory, RegExp][] = [
      [[], /empty/],
      [h('1@2'), /starts at seq 2, not at seq 1/],
      [h('1@1 1@5'), /epoch 1 follows epoch 1/],
      [h('2@1 1@5'), /epoch 1 follows epoch 2/],
      [h('1@1 2@9 3@5'), /epoch 3 starts at seq 5, before epoch 2/],
      [h('0@1'), /epoch 0 is not/],
      [[{ epoch: 1.5, firstSeq: 1n }], /not an integer/],
      [h('4294967296@1'), /not an integer/],
    ];
    for (const [x, why] of bad) {
      assert.throws(() => validateHistory(x), (err: ReplicatorError) => err.code === ErrorCode.INVALID_ARGUMENT && why.test(err.message));
    }
    assert.throws(() => validateHistory([], ErrorCode.CORRUPT_ENTRY), code(ErrorCode.CORRUPT_ENTRY));
  });

  it('startEpoch appends the new epoch, drops adopted epochs that start after it, and refuses an old epoch', () => {
    assert.deepEqual(startEpoch(h('1@1'), 2, 101n), h('1@1 2@101'));
    assert.deepEqual(startEpoch(h('1@1 3@200'), 4, 151n), h('1@1 4@151'), 'epoch 3 never reached this node');
    assert.deepEqual(startEpoch(h('1@1'), 2, 1n), h('1@1 2@1'), 'a promotion before any entry');
    assert.throws(() => startEpoch(h('1@1 3@9'), 3, 20n), code(ErrorCode.INVALID_ARGUMENT));
    assert.throws(() => startEpoch(h('1@1 3@9'), 2, 20n), code(ErrorCode.INVALID_ARGUMENT));
    assert.ok(sameHistory(startEpoch(h('1@1'), 2, 5n), h('1@1 2@5')));
    assert.ok(!sameHistory(h('1@1'), h('1@1 2@5')));
  });

  it('formatHistory and parseHistory round-trip, with the leading comment line', () => {
    const x = h('1@1 2@5301 7@18446744073709551615');
    const text = formatHistory(x);
    assert.match(text, /^# .*\n1 1\n2 5301\n7 18446744073709551615\n$/);
    assert.deepEqual(parseHistory(text), x);
    assert.deepEqual(parseHistory('1 1\n\n# a note\n3 40\n'), h('1@1 3@40'));
  });

  it('parseHistory refuses damage with CORRUPT_ENTRY', () => {
    for (const text of ['', '# only a comment\n', '1 1', '1 1\n2 x\n', '1 1\n2  5\n', '1 1\n-2 5\n', '2 5\n1 1\n', '1 1\n2 5 6\n']) {
      assert.throws(() => parseHistory(text), code(ErrorCode.CORRUPT_ENTRY), JSON.stringify(text));
    }
  });
});
