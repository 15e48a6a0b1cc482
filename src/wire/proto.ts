import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/replicator.js';

/** Must match the flags of the `gen` npm script so runtime objects match the generated types. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

export const PROTO_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../protos/replicator.proto');

/** The .proto's package: every service and message of ours is in it. */
export const REPLICATOR_PACKAGE = 'levelreplicator.v1';

let cached: ProtoGrpcType['levelreplicator']['v1'] | undefined;

/** The levelreplicator.v1 package: service constructors and definitions. */
export function replicatorProto(): ProtoGrpcType['levelreplicator']['v1'] {
  if (!cached) {
    const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
    cached = (grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType).levelreplicator.v1;
  }
  return cached;
}
