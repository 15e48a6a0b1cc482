import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { PairHasher } from '../../src/storage/digest.js';
import { MAX_KEY_BYTES, MAX_MUTATIONS_PER_REQUEST, MAX_MUTATIONS_PER_WRITE, MAX_VALUE_BYTES, MAX_WRITES_PER_REQUEST } from '../../src/common/limits.js';
import { MAX_SEQ } from '../../src/wire/seq.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import type { SubscribeResponse__Output } from '../../src/wire/generated/levelreplicator/v1/SubscribeResponse.js';
import { decodeMasterResponse, encodeMaster, encodeStore, frame, MASTER, RawClient, rawHttp2Call, STORE } from '../helpers/raw-client.js';
import { runTool, ServerProcess, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

interface Digest {
  digest: string;
  seq: string;
  keys: string;
}

/** What store-digest must print for a store holding exactly these pairs at seq. */
function digestOf(pairs: readonly (readonly [Buffer, Buffer])[], seq: number): Digest {
  const hash = new PairHasher();
  for (const [k, v] of [...pairs].sort(([a], [b]) => Buffer.compare(a, b))) hash.update(k, v);
  return { digest: hash.digest(), seq: String(seq), keys: String(pairs.length) };
}

/**
 * Hostile and malformed input against a running master and follower. Every case gets a
 * clear status, is logged once by the server, changes no stored data, and the servers go
 * on serving: the master's store digest is compared with the digest of exactly the data
 * the accepted writes wrote (never re-taken in between, so damage by any case shows), and
 * a real follower keeps replicating to the end.
 */
describe('hostile and malformed input', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  let raw: RawClient;
  /** Every pair the accepted writes stored, and their count (= the master's last seq). */
  const written: [Buffer, Buffer][] = [];
  const digest = async (node = 'master'): Promise<Digest> => {
    const res = await runTool('store-digest', [node, '--json', '--data-root', root]);
    assert.equal(res.code, 0, res.stderr);
    const { digest, seq, keys } = JSON.parse(res.stdout) as Digest;
    return { digest, seq, keys };
  };

  const refusals = (proc: ServerProcess, code: string) => proc.logs.filter((l) => l.msg === 'request refused' && l.code === code).length;
  /** Runs a call and checks that the server logged its refusal exactly once. */
  async function loggedOnce<T>(proc: ServerProcess, code: string, call: () => Promise<T>): Promise<T> {
    const before = refusals(proc, code);
    const result = await call();
    await waitFor(() => refusals(proc, code) >= before + 1, `the ${code} refusal in the log`);
    assert.equal(refusals(proc, code), before + 1, `${code} logged exactly once`);
    return result;
  }
  const expectStatus = (err: grpc.ServiceError | null, status: grpc.status, code?: string) => {
    assert.ok(err, `expected ${grpc.status[status]}, the call succeeded`);
    assert.equal(err.code, status, `status ${grpc.status[err.code]}: ${err.details}`);
    if (code) assert.equal(err.metadata.get('lr-error-code')[0], code, err.details);
  };

  before(async () => {
    master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--no-sync']);
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    raw = new RawClient(master.address);
    const put = await raw.unary(MASTER.Write, encodeMaster('Write', { writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from('existing'), value: Buffer.from('v') }] }] }));
    assert.equal(put.err, null);
    written.push([Buffer.from('existing'), Buffer.from('v')]);
    assert.deepEqual(await digest(), digestOf(written, 1), 'the baseline: exactly the one write');
  });
  after(async () => {
    raw.close();
    await f1.proc.kill('SIGKILL');
    await master.proc.kill('SIGKILL');
  });

  it('malformed protobuf bytes: INVALID_ARGUMENT [MALFORMED_REQUEST] with the reason, on every method', async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]); // field 1, length far past the end
    for (const method of [MASTER.Write, MASTER.Ack, MASTER.Status, STORE.Get, STORE.Digest]) {
      const { err } = await loggedOnce(master.proc, 'MALFORMED_REQUEST', () => raw.unary(method, garbage));
      expectStatus(err, grpc.status.INVALID_ARGUMENT, 'MALFORMED_REQUEST');
      assert.match(err!.details, /not a valid protobuf message/);
    }
    const sub = await loggedOnce(master.proc, 'MALFORMED_REQUEST', () => raw.stream(MASTER.Subscribe, garbage));
    expectStatus(sub.err, grpc.status.INVALID_ARGUMENT, 'MALFORMED_REQUEST');
    const readService = new RawClient(f1.readAddress);
    const { err } = await loggedOnce(f1.proc, 'MALFORMED_REQUEST', () => readService.unary(STORE.Get, garbage));
    readService.close();
    expectStatus(err, grpc.status.INVALID_ARGUMENT, 'MALFORMED_REQUEST');
  });

  it('truncated request streams: a clear status when the stream ends early; a reset stream is dropped quietly', async () => {
    const body = encodeMaster('Write', { writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from('truncated'), value: Buffer.from('x'.repeat(100)) }] }] });
    const partial = frame(body).subarray(0, 40); // the length prefix promises more than arrives
    const ended = await loggedOnce(master.proc, 'MALFORMED_REQUEST', () => rawHttp2Call(master.address, MASTER.Write, partial));
    assert.equal(ended.status, grpc.status.INVALID_ARGUMENT);
    assert.equal(ended.code, 'MALFORMED_REQUEST');
    assert.match(ended.message!, /ended before a complete request message arrived/);
    const empty = await rawHttp2Call(master.address, MASTER.Subscribe, Buffer.alloc(0));
    assert.equal(empty.code, 'MALFORMED_REQUEST');
    const reset = await rawHttp2Call(master.address, MASTER.Write, partial, { reset: true });
    assert.equal(reset.status, undefined, 'a reset stream gets no status');
  });

  it('a message over the gRPC size limit is refused with RESOURCE_EXHAUSTED', async () => {
    const huge = encodeMaster('Write', { writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from('huge'), value: Buffer.alloc(33 * 1024 * 1024, 1) }] }] });
    const before = master.proc.logs.filter((l) => l.status === 'RESOURCE_EXHAUSTED').length;
    const { err } = await raw.unary(MASTER.Write, huge);
    expectStatus(err, grpc.status.RESOURCE_EXHAUSTED);
    await waitFor(() => master.proc.logs.filter((l) => l.status === 'RESOURCE_EXHAUSTED').length === before + 1, 'the refusal in the log');
  });

  it('many tiny operations in one message are counted on the wire and refused before decoding', async () => {
    // 15 million empty mutations in 30 MB: decoded, this took gigabytes and killed the master.
    const n = 15_000_000;
    const inner = Buffer.alloc(n * 2);
    for (let i = 0; i < n; i++) inner[2 * i] = 0x0a;
    const len: number[] = [];
    for (let v = inner.length; ; v >>>= 7) {
      if (v < 0x80) {
        len.push(v);
        break;
      }
      len.push((v & 0x7f) | 0x80);
    }
    const started = Date.now();
    const { err } = await loggedOnce(master.proc, 'BATCH_TOO_LARGE', () => raw.unary(MASTER.Write, Buffer.concat([Buffer.from([0x0a, ...len]), inner])));
    expectStatus(err, grpc.status.INVALID_ARGUMENT, 'BATCH_TOO_LARGE');
    assert.match(err!.details, new RegExp(`more than ${MAX_MUTATIONS_PER_REQUEST} mutations`));
    // 16 million empty writes, the other shape of the same attack.
    const writes = Buffer.alloc(32_000_000);
    for (let i = 0; i < writes.length; i += 2) writes[i] = 0x0a;
    const second = await raw.unary(MASTER.Write, writes);
    expectStatus(second.err, grpc.status.INVALID_ARGUMENT, 'BATCH_TOO_LARGE');
    assert.ok(Date.now() - started < 20_000, 'refused without decoding (used to take 20 s and more)');
    assert.equal(master.proc.exited, false);
  });

  it('keys and values at the limits are accepted, one byte over is refused; too many operations are refused', async () => {
    assert.deepEqual(await digest(), digestOf(written, 1), 'the malformed, truncated, oversize and tiny-operation cases changed nothing');
    const write = (mutations: object[]) => encodeMaster('Write', { writes: [{ mutations }] });
    const [key, value] = [Buffer.alloc(MAX_KEY_BYTES, 'k'), Buffer.alloc(MAX_VALUE_BYTES, 'v')];
    const atLimit = await raw.unary(MASTER.Write, write([{ kind: 'PUT', key, value }]));
    assert.equal(atLimit.err, null);
    written.push([key, value]); // the only change the cases below may leave
    const cases: [string, Buffer, string][] = [
      ['key one byte over', write([{ kind: 'PUT', key: Buffer.alloc(MAX_KEY_BYTES + 1, 'k'), value: Buffer.from('v') }]), 'KEY_TOO_LARGE'],
      ['value one byte over', write([{ kind: 'PUT', key: Buffer.from('k'), value: Buffer.alloc(MAX_VALUE_BYTES + 1) }]), 'VALUE_TOO_LARGE'],
      ['empty key', write([{ kind: 'DELETE', key: Buffer.alloc(0) }]), 'EMPTY_KEY'],
      ['no writes', encodeMaster('Write', { writes: [] }), 'INVALID_ARGUMENT'],
      ['too many writes', encodeMaster('Write', { writes: Array.from({ length: MAX_WRITES_PER_REQUEST + 1 }, () => ({ mutations: [{ kind: 'DELETE', key: Buffer.from('k') }] })) }), 'BATCH_TOO_LARGE'],
      ['too many mutations in one write', write(Array.from({ length: MAX_MUTATIONS_PER_WRITE + 1 }, () => ({ kind: 'DELETE', key: Buffer.from('k') }))), 'BATCH_TOO_LARGE'],
      ['too many bytes', encodeMaster('Write', { writes: Array.from({ length: 17 }, (_, i) => ({ mutations: [{ kind: 'PUT', key: Buffer.from(`big${i}`), value: Buffer.alloc(MAX_VALUE_BYTES) }] })) }), 'BATCH_TOO_LARGE'],
    ];
    for (const [what, body, code] of cases) {
      const { err } = await loggedOnce(master.proc, code, () => raw.unary(MASTER.Write, body));
      expectStatus(err, grpc.status.INVALID_ARGUMENT, code);
      assert.ok(err!.details.length > 10, `${what}: a message`);
    }
    const get = await raw.unary(STORE.Get, encodeStore('Get', { key: Buffer.alloc(MAX_KEY_BYTES + 1) }));
    expectStatus(get.err, grpc.status.INVALID_ARGUMENT, 'KEY_TOO_LARGE');
  });

  it('subscribe from seq 0, from 2^64-1, far ahead, with a foreign history, or with a bad id or read address', async () => {
    const status = decodeMasterResponse('Status', (await raw.unary(MASTER.Status, Buffer.alloc(0))).res!) as StatusResponse__Output;
    const subscribe = (req: object) => raw.stream(MASTER.Subscribe, encodeMaster('Subscribe', { followerId: 77, readAddress: '127.0.0.1:1', ...req }));
    const mine = { historyId: status.historyId, prevChecksum: 1 };
    const cases: [object, grpc.status, string][] = [
      [{ fromSeq: '0' }, grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
      [{ fromSeq: MAX_SEQ.toString(), ...mine }, grpc.status.OUT_OF_RANGE, 'FOLLOWER_AHEAD'],
      [{ fromSeq: '1000000', ...mine }, grpc.status.OUT_OF_RANGE, 'FOLLOWER_AHEAD'],
      [{ fromSeq: '1', prevChecksum: 5 }, grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
      [{ fromSeq: '1', followerId: 0 }, grpc.status.INVALID_ARGUMENT, 'INVALID_FOLLOWER_ID'],
      [{ fromSeq: '1', readAddress: `\u001b[2J${'x'.repeat(10_000)}` }, grpc.status.INVALID_ARGUMENT, 'INVALID_ADDRESS'],
    ];
    for (const [req, code, errorCode] of cases) {
      const { err, messages } = await loggedOnce(master.proc, errorCode, () => subscribe(req));
      assert.equal(messages.length, 0, 'nothing streamed');
      expectStatus(err, code, errorCode);
      assert.ok(err!.details.length < 300, 'the message does not echo hostile input at length');
    }
    // 2^64-1 on a history that is not the master's: never streamed from there; a snapshot is offered.
    const foreign = await subscribe({ fromSeq: MAX_SEQ.toString(), historyId: Buffer.alloc(16, 7), prevChecksum: 1 });
    assert.equal(foreign.err, null);
    const start = (decodeMasterResponse('Subscribe', foreign.messages[0]) as SubscribeResponse__Output).start!;
    assert.ok(start.snapshot, 'a snapshot, not the log from 2^64-1');
    assert.match(start.reason, /history mismatch/);
    const ack = await raw.unary(MASTER.Ack, encodeMaster('Ack', { followerId: 77, appliedSeq: MAX_SEQ.toString() }));
    expectStatus(ack.err, grpc.status.OUT_OF_RANGE, 'FOLLOWER_AHEAD');
  });

  it('two followers claiming one id at once: exactly one streams, the other gets DUPLICATE_FOLLOWER', async () => {
    const req = encodeMaster('Subscribe', { followerId: 42, fromSeq: '1', prevChecksum: 0 });
    const results = await Promise.all([raw.stream(MASTER.Subscribe, req), raw.stream(MASTER.Subscribe, req)]);
    const streamed = results.filter((r) => r.err === null && r.messages.length === 1);
    const refused = results.filter((r) => r.err?.code === grpc.status.ALREADY_EXISTS);
    assert.equal(streamed.length, 1, 'one stream started');
    assert.equal(refused.length, 1, 'one refused');
    assert.equal(refused[0].err!.metadata.get('lr-error-code')[0], 'DUPLICATE_FOLLOWER');
    // A running follower-client's id is taken too, and it keeps streaming.
    const dup = await raw.stream(MASTER.Subscribe, encodeMaster('Subscribe', { followerId: 1, fromSeq: '1', prevChecksum: 0 }));
    expectStatus(dup.err, grpc.status.ALREADY_EXISTS, 'DUPLICATE_FOLLOWER');
    const status = await runTool('replication-status', ['--master', master.address, '--json']);
    const f = JSON.parse(status.stdout).followers.find((x: { id: number }) => x.id === 1);
    assert.equal(f.connected, true);
    assert.equal(f.readAddress, f1.readAddress, 'the first follower still owns the id');
  });

  it('ids and data directories that try to escape are refused; a non-empty foreign directory is not adopted', async () => {
    for (const id of ['../x', '/etc', '..', '1/../../2']) {
      const res = await runTool('store-digest', [id, '--data-root', root]);
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, /\[INVALID_FOLLOWER_ID\]/);
    }
    const foreign = path.join(root, 'not-a-data-dir');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    for (const [tool, args] of [['master-server', ['--listen', '127.0.0.1:0']], ['follower-client', ['9', '--master', master.address, '--listen', '127.0.0.1:0']]] as const) {
      const res = await runTool(tool, [...args, '--data-dir', foreign]);
      assert.equal(res.code, 4, res.stderr);
      assert.match(res.stderr, /is not empty and holds no store.*\[NOT_A_DATA_DIR\]/);
      assert.equal(res.stderr.trim().split('\n').length, 1);
    }
    assert.deepEqual(fs.readdirSync(foreign), ['notes.txt'], 'nothing written there');
  });

  it('stored data is exactly what the accepted writes wrote, and the master and follower still serve', async () => {
    assert.deepEqual(await digest(), digestOf(written, 2), 'nothing but the two accepted writes changed the data');
    const put = await runTool('push-data', ['after-hostile', 'ok', '--master', master.address]);
    assert.equal(put.code, 0, put.stderr);
    written.push([Buffer.from('after-hostile'), Buffer.from('ok')]);
    await waitFor(async () => (await runTool('get-data', ['1', 'after-hostile', '--data-root', root])).stdout === 'ok\n', 'replication after the hostile input');
    assert.deepEqual(await digest(), digestOf(written, 3));
    assert.deepEqual(await digest('1'), digestOf(written, 3), 'the follower holds exactly the same data');
    assert.equal(master.proc.exited, false);
  });
});
