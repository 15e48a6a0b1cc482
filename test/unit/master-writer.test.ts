import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../../src/common/errors.js';
import { MasterWriter, type SendWrite } from '../../src/tools/master-writer.js';
import type { WriteRequest } from '../../src/wire/generated/levelreplicator/v1/WriteRequest.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';

type Answer = WriteResponse__Output | ReplicatorError;

const ok = (epoch: number, seq = 1): WriteResponse__Output => ({
  firstSeq: String(seq), lastSeq: String(seq), ackStatus: 'COMMITTED', followersRequested: 0, followersAcked: 0, epoch,
});
const refusal = (code: ErrorCode, masterAddress?: string, extra: Record<string, string> = {}) =>
  new ReplicatorError(code, `refused with ${code}`, { details: { ...(masterAddress ? { masterAddress } : {}), ...extra } });

/** A fake cluster: each address answers from its script (the last answer repeats); every call is recorded. */
function fake(script: Record<string, Answer[]>) {
  const calls: { address: string; epoch: number | undefined; timeoutMs: number }[] = [];
  let clock = 0;
  const send: SendWrite = async (address, request: WriteRequest, timeoutMs) => {
    calls.push({ address, epoch: request.epoch, timeoutMs });
    const answers = script[address] ?? [refusal(ErrorCode.MASTER_UNAVAILABLE)];
    const a = answers.length > 1 ? answers.shift()! : answers[0];
    if (a instanceof ReplicatorError) throw a;
    return a;
  };
  const opts = { now: () => clock, sleep: async (ms: number) => void (clock += ms), retryIntervalMs: 50 };
  return { calls, send, opts };
}

const WRITE = { writes: [{ mutations: [{ kind: 'PUT' as const, key: Buffer.from('k'), value: Buffer.from('v') }] }] };

async function rejects(p: Promise<unknown>, code: ErrorCode, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isReplicatorError(err), String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('master-writer: redirect once, retry while paused, carry the epoch', () => {
  it('straight to the master: one call, carrying the epoch it knows; the answer raises it', async () => {
    const f = fake({ 'm:1': [ok(3)] });
    const w = new MasterWriter('m:1', f.send, 2, f.opts);
    assert.equal((await w.write(WRITE, 1000)).epoch, 3);
    assert.deepEqual(f.calls.map((c) => [c.address, c.epoch]), [['m:1', 2]]);
    assert.equal(w.epoch, 3, 'the next write carries epoch 3');
    await w.write(WRITE, 1000);
    assert.equal(f.calls[1].epoch, 3);
  });

  it('epoch 1 (every cluster\'s first) is left out: it fences nobody, and masters from before epochs accept the request', async () => {
    const f = fake({ 'm:1': [ok(1)] });
    const w = new MasterWriter('m:1', f.send, 1, f.opts);
    await w.write(WRITE, 1000);
    assert.deepEqual([f.calls[0].epoch, w.epoch], [undefined, 1]);
  });

  it('a write the deposed node committed is sent on only when the node knows the new master lacks it', async () => {
    // Deposed by a Follow notice naming the fork: the write is past it, not in the new history.
    const past = fake({ 'old:1': [refusal(ErrorCode.NOT_MASTER, 'new:1', { written: 'yes', inNewHistory: 'no' })], 'new:1': [ok(2)] });
    await new MasterWriter('old:1', past.send, 1, past.opts).write(WRITE, 1000);
    assert.deepEqual(past.calls.map((c) => c.address), ['old:1', 'new:1']);
    // Deposed without the fork (a newer epoch heard from a client, or etcd): the new master may hold it.
    const unknown = fake({ 'old:1': [refusal(ErrorCode.NOT_MASTER, 'new:1', { written: 'yes', inNewHistory: 'unknown' })], 'new:1': [ok(2)] });
    await rejects(new MasterWriter('old:1', unknown.send, 1, unknown.opts).write(WRITE, 1000), ErrorCode.NOT_MASTER, /committed the write .* not sent again/);
    assert.deepEqual(unknown.calls.map((c) => c.address), ['old:1']);
  });

  it('NOT_MASTER naming the master: sent once more, there; later writes go there directly', async () => {
    const f = fake({ 'f:1': [refusal(ErrorCode.NOT_MASTER, 'm:1')], 'm:1': [ok(1)] });
    const moves: string[] = [];
    const w = new MasterWriter('f:1', f.send, 0, { ...f.opts, onMove: (from, to, why) => moves.push(`${from}>${to} ${why}`) });
    assert.equal((await w.write(WRITE, 1000)).firstSeq, '1');
    await w.write(WRITE, 1000);
    assert.deepEqual(f.calls.map((c) => c.address), ['f:1', 'm:1', 'm:1']);
    assert.deepEqual(moves, ['f:1>m:1 NOT_MASTER']);
    assert.equal(w.address, 'm:1');
  });

  it('STALE_EPOCH from a deposed master naming the new one: redirected too, with the newest epoch', async () => {
    const f = fake({ 'old:1': [refusal(ErrorCode.STALE_EPOCH, 'new:2', { epoch: '4' })], 'new:2': [ok(4)] });
    const w = new MasterWriter('old:1', f.send, 3, f.opts);
    await w.write(WRITE, 1000);
    assert.deepEqual(f.calls.map((c) => [c.address, c.epoch]), [['old:1', 3], ['new:2', 4]]);
  });

  it('never a second redirect in one call: two nodes pointing at each other end after two calls', async () => {
    const f = fake({ 'a:1': [refusal(ErrorCode.NOT_MASTER, 'b:2')], 'b:2': [refusal(ErrorCode.NOT_MASTER, 'a:1')] });
    const w = new MasterWriter('a:1', f.send, 0, f.opts);
    await rejects(w.write(WRITE, 1000), ErrorCode.NOT_MASTER, /refused with NOT_MASTER \(redirected once, from a:1 to b:2; not following a second redirect\)$/);
    assert.deepEqual(f.calls.map((c) => c.address), ['a:1', 'b:2']);
  });

  it('NOT_MASTER naming no master, or itself: not sent again', async () => {
    const none = fake({ 'f:1': [refusal(ErrorCode.NOT_MASTER)] });
    await rejects(new MasterWriter('f:1', none.send, 0, none.opts).write(WRITE, 1000), ErrorCode.NOT_MASTER, /\(it names no master to send the write to\)$/);
    assert.equal(none.calls.length, 1);
    const itself = fake({ 'm:1': [refusal(ErrorCode.NOT_MASTER, 'm:1')] });
    await rejects(new MasterWriter('m:1', itself.send, 0, itself.opts).write(WRITE, 1000), ErrorCode.NOT_MASTER, /names itself/);
    assert.equal(itself.calls.length, 1);
  });

  it('WRITES_PAUSED: tried again every 50 ms, at the master the pause names once it is known', async () => {
    const f = fake({
      'old:1': [refusal(ErrorCode.WRITES_PAUSED), refusal(ErrorCode.WRITES_PAUSED), refusal(ErrorCode.WRITES_PAUSED, 'new:2')],
      'new:2': [ok(2, 7)],
    });
    const w = new MasterWriter('old:1', f.send, 1, f.opts);
    assert.equal((await w.write(WRITE, 1000)).firstSeq, '7');
    assert.deepEqual(f.calls.map((c) => c.address), ['old:1', 'old:1', 'old:1', 'new:2']);
    // Each call's deadline is what is left of the one call's: 1000, then 950, 900, 850.
    assert.deepEqual(f.calls.map((c) => c.timeoutMs), [1000, 950, 900, 850]);
    assert.equal(w.epoch, 2);
  });

  it('WRITES_PAUSED until the deadline: the pause is the answer (retryable), after about timeout / 50 ms tries', async () => {
    const f = fake({ 'm:1': [refusal(ErrorCode.WRITES_PAUSED)] });
    await rejects(new MasterWriter('m:1', f.send, 0, f.opts).write(WRITE, 500), ErrorCode.WRITES_PAUSED, /writes stayed paused at m:1 for 450 ms, until the call's deadline; nothing was written\)$/);
    assert.equal(f.calls.length, 10);
  });

  it('a pause naming the new master, then NOT_MASTER there: still one redirect at most', async () => {
    const f = fake({ 'old:1': [refusal(ErrorCode.WRITES_PAUSED, 'new:2')], 'new:2': [refusal(ErrorCode.NOT_MASTER, 'x:3')], 'x:3': [refusal(ErrorCode.NOT_MASTER, 'old:1')] });
    await rejects(new MasterWriter('old:1', f.send, 0, f.opts).write(WRITE, 1000), ErrorCode.NOT_MASTER, /redirected once, from new:2 to x:3/);
    assert.deepEqual(f.calls.map((c) => c.address), ['old:1', 'new:2', 'x:3']);
  });

  it('redirect off: the refusal is the answer, and a pause is waited out at the same address', async () => {
    const f = fake({ 'f:1': [refusal(ErrorCode.NOT_MASTER, 'm:1')], 'p:1': [refusal(ErrorCode.WRITES_PAUSED, 'n:2'), ok(1)] });
    await rejects(new MasterWriter('f:1', f.send, 0, { ...f.opts, redirect: false }).write(WRITE, 1000), ErrorCode.NOT_MASTER, /^refused with NOT_MASTER$/);
    assert.deepEqual(await new MasterWriter('p:1', f.send, 0, { ...f.opts, redirect: false }).write(WRITE, 1000), ok(1));
    assert.deepEqual(f.calls.map((c) => c.address), ['f:1', 'p:1', 'p:1']);
  });

  it('any other failure is the answer at once (a transport failure says the outcome is unknown, not retried)', async () => {
    const f = fake({ 'm:1': [refusal(ErrorCode.MASTER_UNAVAILABLE, 'x:2')] });
    await rejects(new MasterWriter('m:1', f.send, 0, f.opts).write(WRITE, 1000), ErrorCode.MASTER_UNAVAILABLE, /^refused with MASTER_UNAVAILABLE$/);
    assert.equal(f.calls.length, 1);
  });
});
