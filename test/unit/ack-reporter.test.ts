import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { MasterClient } from '../../src/wire/generated/levelreplicator/v1/Master.js';
import { AckReporter } from '../../src/follower/ack-reporter.js';

/** A Master client whose Ack calls are recorded and answered by the test. */
function fakeClient(opts: { throwOnCall?: () => boolean } = {}) {
  const calls: { seq: string; answer: (err: Error | null) => void }[] = [];
  const client = {
    Ack(req: { appliedSeq: string }, _o: unknown, cb: (err: Error | null) => void) {
      if (opts.throwOnCall?.()) throw new Error('Channel has been shut down');
      calls.push({ seq: req.appliedSeq, answer: cb });
    },
  } as unknown as MasterClient;
  return { client, calls };
}
const log = pino({ level: 'silent' });

describe('ack reporter', () => {
  it('one Ack in flight; reports meanwhile collapse into one with the newest seq', () => {
    const { client, calls } = fakeClient();
    const acks = new AckReporter(client, 1, log);
    acks.report(5n);
    acks.report(6n);
    acks.report(7n);
    assert.deepEqual(calls.map((c) => c.seq), ['5']);
    calls[0].answer(null);
    assert.deepEqual(calls.map((c) => c.seq), ['5', '7']);
    calls[1].answer(null);
    acks.report(7n);
    assert.equal(calls.length, 2, 'an unchanged seq is not sent again');
  });

  it('after stop(), no Ack starts, not even one chained from a call still in flight', () => {
    const { client, calls } = fakeClient();
    const acks = new AckReporter(client, 1, log);
    acks.report(5n);
    acks.report(6n); // pending behind the call in flight
    acks.stop();
    calls[0].answer(new Error('CANCELLED'));
    acks.report(7n);
    assert.deepEqual(calls.map((c) => c.seq), ['5']);
  });

  it('a client that throws (a closed channel) does not throw out of report(), and later reports still go', () => {
    let closed = true;
    const { client, calls } = fakeClient({ throwOnCall: () => closed });
    const acks = new AckReporter(client, 1, log);
    assert.doesNotThrow(() => acks.report(5n));
    closed = false;
    acks.report(6n);
    assert.deepEqual(calls.map((c) => c.seq), ['6']);
  });
});
