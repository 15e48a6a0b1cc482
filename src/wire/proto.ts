import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { ProtoGrpcType } from './generated/replicator.js';

/** Must match the flags of the `gen` npm script so runtime objects match the generated types. */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

const PROTO_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../protos/replicator.proto');

let cached: ProtoGrpcType['levelreplicator']['v1'] | undefined;

/** The levelreplicator.v1 package: service constructors and definitions. */
export function replicatorProto(): ProtoGrpcType['levelreplicator']['v1'] {
  if (!cached) {
    const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
    cached = (grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType).levelreplicator.v1;
  }
  return cached;
}

/** Our services and the health service, described for server reflection. */
export function reflectionPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync([PROTO_FILE, healthProtoPath], LOADER_OPTIONS);
}
