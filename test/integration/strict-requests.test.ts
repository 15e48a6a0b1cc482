import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import descriptor, { type IFileDescriptorProto } from 'protobufjs/ext/descriptor/index.js';
import { reflectionFilesContaining } from '../helpers/probes.js';
import { runTool, startFollower, startMaster, tempDir, waitFor, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';
import { encodeMaster, MASTER, RawClient, STORE } from '../helpers/raw-client.js';

/**
 * Requests that protobufjs used to take for valid ones (a field with the wrong wire type,
 * a truncated field, an over-long varint), sent as raw bytes to a running master and
 * follower: every one is refused with INVALID_ARGUMENT [MALFORMED_REQUEST] before any
 * handler runs, on every service of both, and a Subscribe refused this way leaves no
 * replication slot behind.
 */
describe('strict request decoding on running servers', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  let toMaster: RawClient;
  let toFollower: RawClient;

  const followerIds = async (): Promise<number[]> => {
    const res = await runTool('replication-status', ['--master', master.address, '--json']);
    assert.equal(res.code, 0, res.stderr);
    return (JSON.parse(res.stdout).followers as { id: number }[]).map((f) => f.id);
  };

  before(async () => {
    master = await startMaster(path.join(root, 'master'), '127.0.0.1:0', ['--no-sync']);
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address, ['--no-sync']);
    toMaster = new RawClient(master.address);
    toFollower = new RawClient(f1.readAddress);
  });
  after(async () => {
    toMaster.close();
    toFollower.close();
    await f1.proc.kill('SIGKILL');
    await master.proc.kill('SIGKILL');
  });

  const cases: [method: string, hex: string, what: string][] = [
    [MASTER.Subscribe, '08631501', 'follower 99 with from_seq as fixed32'],
    [MASTER.Ack, '0affffffff0f', 'follower_id as a length-delimited field'],
    [MASTER.Ack, '08011501', 'applied_seq as fixed32'],
    [STORE.Get, '080110', 'key as a varint'],
    [MASTER.Subscribe, '0863' + '10ffffffffffffffffff02', 'from_seq overflowing 64 bits'],
    [MASTER.Write, '0801', 'writes as a varint'],
    [MASTER.Write, '0a050a03120274', 'a key cut short'],
    [MASTER.Status, '0b', 'a group'],
    [STORE.Digest, '00', 'field number 0'],
    [STORE.Get, '0a016b10ffffffffffffffffffffff01', 'min_seq in 11 bytes'],
  ];

  async function call(client: RawClient, method: string, body: Buffer): Promise<grpc.ServiceError | null> {
    if (method === MASTER.Subscribe) return (await client.stream(method, body)).err;
    return (await client.unary(method, body)).err;
  }

  it('refuses each with MALFORMED_REQUEST on the master, naming what is wrong', async () => {
    for (const [method, hex, what] of cases) {
      const err = await call(toMaster, method, Buffer.from(hex, 'hex'));
      assert.ok(err, `${method} ${hex} (${what}): refused`);
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT, `${what}: ${err.details}`);
      assert.equal(err.metadata.get('lr-error-code')[0], 'MALFORMED_REQUEST', `${what}: ${err.details}`);
      assert.match(err.details, /request is not a valid protobuf message: /, what);
    }
    assert.match(
      (await call(toMaster, MASTER.Subscribe, Buffer.from('08631501', 'hex')))!.details,
      /SubscribeRequest field 2 \(fromSeq\) has wire type 5 \(I32\), but its type uint64 is sent as 0 \(VARINT\)/,
    );
  });

  it('a refused Subscribe creates no slot; the same follower subscribing properly does', async () => {
    assert.deepEqual(await followerIds(), [1], 'only the running follower is known');
    const proper = await toMaster.stream(MASTER.Subscribe, encodeMaster('Subscribe', { followerId: 99, fromSeq: '1', prevChecksum: 0 }));
    assert.equal(proper.err, null, 'a well-formed subscription is accepted');
    await waitFor(async () => (await followerIds()).includes(99), 'follower 99 in the status once it subscribed properly');
  });

  it('refuses each on the follower too, on its Store service and on its Master service (before NOT_MASTER)', async () => {
    for (const [method, hex, what] of cases) {
      const err = await call(toFollower, method, Buffer.from(hex, 'hex'));
      assert.ok(err, `${method} ${hex} (${what}): refused`);
      assert.equal(err.metadata.get('lr-error-code')[0], 'MALFORMED_REQUEST', `${what} on the follower: ${err.details}`);
    }
    // Write is refused by every follower (Subscribe and Ack are served: chained followers).
    const wellFormed = await toFollower.unary(MASTER.Write, encodeMaster('Write', { writes: [{ mutations: [{ key: Buffer.from('k'), value: Buffer.from('v') }] }] }));
    assert.equal(wellFormed.err?.metadata.get('lr-error-code')[0], 'NOT_MASTER', 'a well-formed call still reaches the read-only handler');
    assert.equal(f1.proc.exited, false);
    assert.equal(master.proc.exited, false);
  });

  it('serves reflection with the .proto names on the master and the follower', async () => {
    for (const address of [master.address, f1.readAddress]) {
      const files = (await reflectionFilesContaining(address, 'levelreplicator.v1.Store')).map((b) => descriptor.FileDescriptorProto.decode(b) as IFileDescriptorProto);
      const get = files.flatMap((f) => f.messageType ?? []).find((m) => m.name === 'GetRequest');
      assert.deepEqual(get?.field?.map((f) => f.name), ['key', 'min_seq'], address);
    }
  });
});
