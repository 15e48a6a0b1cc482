import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import protobuf from 'protobufjs';
import descriptor, { type IDescriptorProto, type IFileDescriptorProto } from 'protobufjs/ext/descriptor/index.js';
import { bindServer, shutdownServer } from '../../src/wire/grpc-transport.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { createServer } from '../../src/wire/server-guard.js';
import { MASTER_SERVICE, StandardServices, STORE_SERVICE } from '../../src/wire/standard-services.js';
import { reflectionFilesContaining } from '../helpers/probes.js';

const decodeFile = (b: Buffer) => descriptor.FileDescriptorProto.decode(b) as IFileDescriptorProto;

/** Every message of a file, nested ones included, by fully-qualified name. */
function messagesOf(file: IFileDescriptorProto): Map<string, IDescriptorProto> {
  const out = new Map<string, IDescriptorProto>();
  const visit = (m: IDescriptorProto, scope: string) => {
    const name = `${scope}.${m.name}`;
    out.set(name, m);
    for (const n of m.nestedType ?? []) visit(n, name);
  };
  for (const m of file.messageType ?? []) visit(m, `.${file.package}`);
  return out;
}

/**
 * Server reflection, through the reflection service of a real server (as every node adds
 * it), serves the .proto's own field names and fully-qualified type names, so a
 * reflection-driven client (grpcurl, Python's json_format) accepts the .proto's names.
 */
describe('server reflection', () => {
  let server: grpc.Server;
  let address: string;

  before(async () => {
    server = createServer(undefined, pino({ level: 'silent' }));
    new StandardServices(server, [MASTER_SERVICE, STORE_SERVICE]);
    address = await bindServer(server, '127.0.0.1:0');
  });
  after(() => shutdownServer(server));

  for (const version of ['v1', 'v1alpha'] as const) {
    it(`serves the .proto's field names and fully-qualified type names (${version})`, async () => {
      const files = (await reflectionFilesContaining(address, 'levelreplicator.v1.Store', undefined, version)).map(decodeFile);
      const ours = files.find((f) => f.package === 'levelreplicator.v1');
      assert.ok(ours, `the file of levelreplicator.v1 among ${files.map((f) => f.name).join(', ')}`);
      const messages = messagesOf(ours);
      const fields = (name: string) => (messages.get(name)?.field ?? []).map((f) => [f.name, f.typeName ?? '', f.jsonName]);
      assert.deepEqual(fields('.levelreplicator.v1.GetRequest'), [['key', '', 'key'], ['min_seq', '', 'minSeq']]);
      assert.deepEqual(fields('.levelreplicator.v1.AckRequest'), [['follower_id', '', 'followerId'], ['applied_seq', '', 'appliedSeq']]);
      assert.deepEqual(fields('.levelreplicator.v1.WriteRequest'), [['writes', '.levelreplicator.v1.Write', 'writes'], ['ack', '.levelreplicator.v1.AckPolicy', 'ack'], ['epoch', '', 'epoch']]);
      assert.deepEqual(fields('.levelreplicator.v1.Mutation')[0], ['kind', '.levelreplicator.v1.Mutation.Kind', 'kind']);
      for (const [name, m] of messages) {
        for (const f of m.field ?? []) {
          assert.doesNotMatch(f.name ?? '', /[A-Z]/, `${name}.${f.name}: the .proto's snake_case name`);
          if (f.typeName) assert.match(f.typeName, /^\.levelreplicator\.v1\.[A-Z]/, `${name}.${f.name}: ${f.typeName} is fully qualified`);
        }
      }
      const methods = ours.service?.flatMap((s) => (s.method ?? []).map((m) => [m.inputType, m.outputType])).flat() ?? [];
      for (const t of methods) assert.match(String(t), /^\.levelreplicator\.v1\.[A-Z]\w+$/);
    });
  }

  it('serves the health service the same way', async () => {
    const files = (await reflectionFilesContaining(address, 'grpc.health.v1.Health')).map(decodeFile);
    const health = files.find((f) => f.package === 'grpc.health.v1')!;
    const status = messagesOf(health).get('.grpc.health.v1.HealthCheckResponse')!.field![0];
    assert.deepEqual([status.name, status.typeName], ['status', '.grpc.health.v1.HealthCheckResponse.ServingStatus']);
  });

  it('lets a client built from the reflected descriptors read our messages under the .proto names', async () => {
    const files = (await reflectionFilesContaining(address, 'levelreplicator.v1.Master')).map(decodeFile);
    const root = protobuf.Root.fromDescriptor({ file: files });
    const Subscribe = root.lookupType('levelreplicator.v1.SubscribeRequest');
    const bytes = replicatorProto().Master.service.Subscribe.requestSerialize({ followerId: 7, fromSeq: '42', readAddress: 'h:1' }) as Buffer;
    assert.deepEqual(Subscribe.toObject(Subscribe.decode(bytes), { longs: String }), { follower_id: 7, from_seq: '42', read_address: 'h:1' });
    // The application's own definition keeps the generated types' names.
    assert.deepEqual(Object.keys(replicatorProto().Store.service.Get.requestDeserialize(Buffer.alloc(0)) as object), ['key', 'minSeq']);
  });
});
