import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { describe, it } from 'node:test';
import { parseMetricsListen, parseNonNegativeInt } from '../../src/common/config.js';
import { MAX_SERVER_WAIT_MS, waitBudgetMs } from '../../src/wire/deadline.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../../src/common/errors.js';
import { fromServiceError, toServiceError, WRITE_OUTCOME_UNKNOWN } from '../../src/wire/grpc-status.js';
import { SeqWaiters } from '../../src/common/seq-waiters.js';
import { parseSeq } from '../../src/wire/seq.js';
import { WriteRate } from '../../src/master/write-rate.js';

describe('seq waiters (read-your-writes)', () => {
  it('releases readers in seq order as the position advances, and times out the rest', async () => {
    const w = new SeqWaiters(5n);
    assert.equal(await w.wait(5n, 0), true, 'already applied: no wait');
    assert.equal(await w.wait(6n, 0), false);
    const done: bigint[] = [];
    const a = w.wait(7n, 60_000).then((ok) => ok && done.push(7n));
    const b = w.wait(9n, 60_000).then((ok) => ok && done.push(9n));
    const c = w.wait(50n, 30);
    w.advance(6n);
    await Promise.resolve();
    assert.deepEqual(done, []);
    w.advance(8n);
    await a;
    assert.deepEqual(done, [7n]);
    assert.equal(await c, false);
    assert.equal(w.waiting, 1);
    w.advance(3n); // never backwards
    assert.equal(w.position, 8n);
    w.reset(2n); // a snapshot of another history: lower, waiters keep waiting
    assert.equal(w.position, 2n);
    w.advance(9n);
    await b;
    assert.deepEqual(done, [7n, 9n]);
    const d = w.wait(100n, 60_000);
    w.cancelAll();
    assert.equal(await d, false);
  });
});

describe('wait budget inside a call', () => {
  const call = (deadline: Date | number) => ({ getDeadline: () => deadline });
  it('leaves a margin before the client deadline and caps waits without one', () => {
    const now = 1_000_000;
    assert.equal(waitBudgetMs(call(Infinity), MAX_SERVER_WAIT_MS, now), MAX_SERVER_WAIT_MS);
    assert.equal(waitBudgetMs(call(new Date(now + 10_000)), MAX_SERVER_WAIT_MS, now), 10_000 - 250);
    assert.equal(waitBudgetMs(call(now + 1_000), MAX_SERVER_WAIT_MS, now), 900);
    assert.equal(waitBudgetMs(call(now + 100), MAX_SERVER_WAIT_MS, now), 80);
    assert.equal(waitBudgetMs(call(now - 5), MAX_SERVER_WAIT_MS, now), 0);
    assert.equal(waitBudgetMs(call(now + 10_000), 500, now), 500);
  });
});

describe('write rate', () => {
  it('averages whole seconds over the window', () => {
    const r = new WriteRate(10);
    const t0 = 1_700_000_000_000;
    for (let s = 0; s < 10; s++) r.record(100, t0 + s * 1000 + 10);
    assert.equal(r.rate(t0 + 10_000), 100);
    r.record(1_000_000, t0 + 10_500); // the current second is not counted yet
    assert.equal(r.rate(t0 + 10_900), 100);
    assert.equal(r.rate(t0 + 60_000), 0, 'old seconds fall out of the window');
  });
});

describe('option and error plumbing', () => {
  it('parses metrics listen addresses and switches', () => {
    assert.equal(parseMetricsListen('127.0.0.1:0'), '127.0.0.1:0');
    assert.equal(parseMetricsListen('[::1]:9464'), '[::1]:9464');
    for (const off of ['off', 'none', 'OFF', '', 'false']) assert.equal(parseMetricsListen(off), undefined);
    assert.throws(() => parseMetricsListen('9464'), (e) => isReplicatorError(e, ErrorCode.INVALID_ADDRESS));
  });

  it('parses non-negative integers and seqs', () => {
    assert.equal(parseNonNegativeInt('0', '--n'), 0);
    assert.equal(parseNonNegativeInt(3, '--n', 3), 3);
    for (const bad of ['-1', '1.5', 'x', '', '4']) assert.throws(() => parseNonNegativeInt(bad, '--n', 3), /--n must be an integer from 0 to 3/);
    assert.equal(parseSeq('18446744073709551615', '--min-seq'), 18446744073709551615n);
    for (const bad of ['-1', '18446744073709551616', '1e3', 'x', '']) assert.throws(() => parseSeq(bad, '--min-seq'), (e) => isReplicatorError(e, ErrorCode.INVALID_ARGUMENT));
  });

  it('carries error details (the master address of NOT_MASTER) through gRPC metadata', () => {
    const sent = toServiceError(new ReplicatorError(ErrorCode.NOT_MASTER, 'read-only', { details: { masterAddress: '127.0.0.1:7' } }));
    assert.deepEqual(sent.metadata!.get('lr-master-address'), ['127.0.0.1:7']);
    const got = fromServiceError({ ...sent, message: 'x' }, { role: 'follower', address: 'f' });
    assert.equal(got.code, ErrorCode.NOT_MASTER);
    assert.deepEqual(got.details, { masterAddress: '127.0.0.1:7' });
  });

  it('says a Write that failed in transport may or may not have been committed; other calls do not', () => {
    const lost = { code: grpc.status.UNAVAILABLE, details: 'Connection dropped', message: 'x', metadata: new grpc.Metadata() };
    const write = fromServiceError(lost, { role: 'master', address: 'm:1', write: true });
    assert.equal(write.code, ErrorCode.MASTER_UNAVAILABLE);
    assert.match(write.message, /^master at m:1 is unavailable: .*; the write may or may not have been committed: check with replication-status \(the master's last seq\) or a read \(get-data\) before retrying$/);
    const late = fromServiceError({ ...lost, code: grpc.status.DEADLINE_EXCEEDED }, { role: 'master', address: 'm:1', write: true });
    assert.equal(late.code, ErrorCode.DEADLINE_EXCEEDED);
    assert.equal(late.message, `master at m:1 did not answer in time; ${WRITE_OUTCOME_UNKNOWN}`);
    const status = fromServiceError(lost, { role: 'master', address: 'm:1' });
    assert.equal(status.code, ErrorCode.MASTER_UNAVAILABLE);
    assert.doesNotMatch(status.message, /may or may not/);
  });
});
