import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import descriptor, { type IFileDescriptorProto } from 'protobufjs/ext/descriptor/index.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { decodeMessage, planOf } from './message-decoder.js';
import { REPLICATOR_PACKAGE } from './proto.js';
import { writeRequestDecoder } from './write-request-decoder.js';

/**
 * Hardened, strict request decoding for every method of every service a server adds
 * (server-guard.ts installs it): ours, and the health and reflection services.
 *
 * Strict: each method's requests are decoded from the message descriptors proto-loader
 * attaches to its definition, by message-decoder.ts (Master.Write by its own one-pass
 * decoder, write-request-decoder.ts). Bytes protobufjs would have guessed at (a field with
 * the wrong wire type, a truncated field, an over-long varint...) are refused before any
 * handler runs. Our own services get the decoded object itself (exactly proto-loader's
 * shape); a service of another package (health, reflection) is checked the same way,
 * then decoded by its own deserializer, whose options we do not know.
 *
 * Hardened: grpc-js answers a request that fails to decode with INTERNAL "Error
 * deserializing request" and never tells the application. Our deserializers never throw:
 * they hand the server guard a RefusedRequest instead, which it answers with
 * INVALID_ARGUMENT [MALFORMED_REQUEST] and the decoder's reason (or the decoder's own
 * error: BATCH_TOO_LARGE), and logs once.
 */
export class RefusedRequest {
  constructor(readonly error: ReplicatorError) {}
}

/** What the strict decoder needs of a method definition; requestType is proto-loader's (grpc-js's type does not name it). */
interface DescribedMethod {
  path: string;
  requestDeserialize: grpc.deserialize<unknown>;
  requestType?: { fileDescriptorProtos?: readonly Buffer[] };
}

const WRITE_PATH = `/${REPLICATOR_PACKAGE}.Master/Write`;

/**
 * The strict decoder of a method's requests; the method's own deserializer when its
 * definition carries no descriptors (then only hardened).
 */
export function strictRequestDecoder(method: DescribedMethod): grpc.deserialize<unknown> {
  const type = requestTypeOf(method);
  if (!type) {
    if (isOurs(method.path)) throw new Error(`internal error: no descriptors for ${method.path}`);
    return method.requestDeserialize;
  }
  const plan = planOf(type);
  if (method.path === WRITE_PATH) return writeRequestDecoder(plan);
  if (isOurs(method.path)) return (bytes) => decodeMessage(plan, bytes);
  const own = method.requestDeserialize;
  return (bytes) => {
    decodeMessage(plan, bytes);
    return own(bytes);
  };
}

function isOurs(path: string): boolean {
  return path.startsWith(`/${REPLICATOR_PACKAGE}.`);
}

const roots = new WeakMap<readonly Buffer[], protobuf.Root>();

/** The method's request type, resolved from the file descriptors in its definition. */
function requestTypeOf(method: DescribedMethod): protobuf.Type | undefined {
  const files = method.requestType?.fileDescriptorProtos;
  if (!files) return undefined;
  let root = roots.get(files);
  if (!root) {
    root = protobuf.Root.fromDescriptor({ file: files.map((f) => descriptor.FileDescriptorProto.decode(f) as IFileDescriptorProto) });
    roots.set(files, root);
  }
  const [, serviceName, name] = method.path.split('/');
  const service = root.lookup(serviceName);
  if (!(service instanceof protobuf.Service)) return undefined;
  const rpc = service.methods[name];
  if (!rpc) return undefined;
  rpc.resolve();
  return rpc.resolvedRequestType ?? undefined;
}

function reasonOf(err: unknown): string {
  const msg = String((err as Error)?.message ?? err);
  return msg.length > 200 ? `${msg.slice(0, 200)}…` : msg;
}

/** Wraps one request deserializer: never throws, reports why. */
export function hardenDeserializer(path: string, deserialize: grpc.deserialize<unknown>): grpc.deserialize<unknown> {
  return (bytes: Buffer) => {
    try {
      return deserialize(bytes);
    } catch (err) {
      // The decoder's own refusals (BATCH_TOO_LARGE) keep their code.
      if (err instanceof ReplicatorError) return new RefusedRequest(err);
      return new RefusedRequest(
        new ReplicatorError(ErrorCode.MALFORMED_REQUEST, `the ${path.slice(path.lastIndexOf('/') + 1)} request is not a valid protobuf message: ${reasonOf(err)}`),
      );
    }
  };
}

/** A copy of a service definition whose requests are decoded strictly, by hardened deserializers. */
export function hardenService<S extends grpc.ServiceDefinition>(service: S): S {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    out[name] = { ...method, requestDeserialize: hardenDeserializer(method.path, strictRequestDecoder(method)) };
  }
  return out as S;
}
