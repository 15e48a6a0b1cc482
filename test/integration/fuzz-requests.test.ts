import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { WriteRequest__Output } from '../../src/wire/generated/levelreplicator/v1/WriteRequest.js';
import type { WriteResponse__Output } from '../../src/wire/generated/levelreplicator/v1/WriteResponse.js';
import { FUZZ_SEED, fuzzIterations, mutate, Rng } from '../helpers/fuzz.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';
import { decodeMaster, decodeMasterResponse, encodeMaster, encodeStore, MASTER, RawClient, STORE } from '../helpers/raw-client.js';

/** Statuses a well-behaved server may answer garbage with; INTERNAL or UNKNOWN would be a bug. */
const CLEAN = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.OUT_OF_RANGE,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.ALREADY_EXISTS,
  grpc.status.NOT_FOUND,
  grpc.status.RESOURCE_EXHAUSTED,
]);

/** The store digest (see README) of a model: sha256 over (u32 len, key, u32 len, value) in key order. */
function modelDigest(model: Map<string, Buffer>): string {
  const hash = crypto.createHash('sha256');
  const len = Buffer.alloc(4);
  const keys = [...model.keys()].map((k) => Buffer.from(k, 'hex')).sort(Buffer.compare);
  for (const k of keys) {
    const v = model.get(k.toString('hex'))!;
    len.writeUInt32BE(k.length);
    hash.update(len).update(k);
    len.writeUInt32BE(v.length);
    hash.update(len).update(v);
  }
  return hash.digest('hex');
}

/**
 * Random and mutated request bytes sent undecoded to every method of the master and of a
 * follower's read service. Every call must end with a clean status (or succeed); the
 * servers must stay up; and the store must hold exactly what the accepted writes put there
 * (a mutated Write can still be a valid request): with no accepted write, the digest is
 * unchanged.
 */
describe('request fuzz', () => {
  const root = tempDir();
  let master: MasterHandle;
  let follower: FollowerHandle;
  let raw: RawClient;
  let readService: RawClient;
  const model = new Map<string, Buffer>();

  const templates = {
    [MASTER.Write]: [
      encodeMaster('Write', { writes: [{ mutations: [{ kind: 'PUT', key: Buffer.from('fuzz-a'), value: Buffer.from('value a') }] }] }),
      encodeMaster('Write', {
        writes: [
          { mutations: [{ kind: 'PUT', key: Buffer.from('fuzz-b'), value: Buffer.from('b') }, { kind: 'DELETE', key: Buffer.from('seed-1') }] },
          { mutations: [{ kind: 'PUT', key: Buffer.from('fuzz-c'), value: Buffer.alloc(300, 'c') }] },
        ],
      }),
    ],
    [MASTER.Subscribe]: [encodeMaster('Subscribe', { followerId: 9, fromSeq: '1', prevChecksum: 0, readAddress: '127.0.0.1:9' })],
    [MASTER.Ack]: [encodeMaster('Ack', { followerId: 1, appliedSeq: '1' })],
    [MASTER.Status]: [Buffer.alloc(0)],
    [STORE.Get]: [encodeStore('Get', { key: Buffer.from('seed-2') })],
    [STORE.Digest]: [Buffer.alloc(0)],
  };

  before(async () => {
    master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--no-sync']);
    follower = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--no-sync']);
    raw = new RawClient(master.address);
    readService = new RawClient(follower.readAddress);
    for (let i = 0; i < 5; i++) {
      const key = Buffer.from(`seed-${i}`);
      const value = Buffer.from(`value ${i}`);
      const { err } = await raw.unary(MASTER.Write, encodeMaster('Write', { writes: [{ mutations: [{ kind: 'PUT', key, value }] }] }));
      assert.equal(err, null);
      model.set(key.toString('hex'), value);
    }
  });
  after(async () => {
    raw.close();
    readService.close();
    await follower.proc.kill('SIGKILL');
    await master.proc.kill('SIGKILL');
  });

  it('never crashes a server, answers with clean statuses, and changes nothing but accepted writes', async () => {
    const rng = new Rng(FUZZ_SEED);
    const digestBefore = (await runTool('store-digest', ['master', '--data-root', root])).stdout;
    const accepted: { firstSeq: bigint; request: WriteRequest__Output }[] = [];
    const outcomes = new Map<string, number>();
    const cases: { target: RawClient; method: string; body: Buffer }[] = [];
    for (const [method, bodies] of Object.entries(templates)) {
      for (let i = 0; i < fuzzIterations(250); i++) {
        const body = rng.next() < 0.25 ? rng.bytes(rng.int(rng.next() < 0.9 ? 64 : 2048)) : mutate(rng, rng.pick(bodies));
        const onFollower = method.startsWith('/levelreplicator.v1.Store/') && rng.next() < 0.5;
        cases.push({ target: onFollower ? readService : raw, method, body });
      }
    }
    const run = async ({ target, method, body }: (typeof cases)[number]) => {
      let err: grpc.ServiceError | null;
      if (method === MASTER.Subscribe) {
        ({ err } = await target.stream(method, body, { timeoutMs: 10_000 }));
      } else {
        const res = await target.unary(method, body, { timeoutMs: 10_000 });
        err = res.err;
        if (!err && method === MASTER.Write) {
          const { firstSeq } = decodeMasterResponse('Write', res.res!) as WriteResponse__Output;
          accepted.push({ firstSeq: BigInt(firstSeq), request: decodeMaster('Write', body) as WriteRequest__Output });
        }
      }
      const outcome = `${method.slice(method.lastIndexOf('/') + 1)} ${err ? grpc.status[err.code] : 'OK'}`;
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (err) assert.ok(CLEAN.has(err.code), `seed ${FUZZ_SEED}: ${method} answered ${grpc.status[err.code]} (${err.details}) to ${body.toString('hex')}`);
    };
    // Eight calls in flight at a time.
    let nextCase = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (nextCase < cases.length) await run(cases[nextCase++]);
    }));
    process.stdout.write(`# fuzz outcomes (seed ${FUZZ_SEED}): ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}\n`);

    assert.equal(master.proc.exited, false, 'master still running');
    assert.equal(follower.proc.exited, false, 'follower still running');
    // Apply the accepted writes to the model in commit order.
    accepted.sort((a, b) => (a.firstSeq < b.firstSeq ? -1 : 1));
    for (const { request } of accepted) {
      for (const write of request.writes) {
        for (const m of write.mutations) {
          if (m.kind === 'PUT') model.set(m.key.toString('hex'), m.value);
          else model.delete(m.key.toString('hex'));
        }
      }
    }
    const after = JSON.parse((await runTool('store-digest', ['master', '--data-root', root, '--json'])).stdout);
    assert.equal(after.digest, modelDigest(model), 'the master holds exactly the seeded data and the accepted writes');
    if (accepted.length === 0) assert.equal((await runTool('store-digest', ['master', '--data-root', root])).stdout, digestBefore);
    // The follower still replicates, to the same state.
    await waitFor(async () => {
      const f = JSON.parse((await runTool('store-digest', ['1', '--data-root', root, '--json'])).stdout);
      return f.seq === after.seq && f.digest === after.digest;
    }, 'the follower to converge after the fuzz');
  });
});
