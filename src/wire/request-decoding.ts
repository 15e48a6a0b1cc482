import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs/minimal.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { MAX_MUTATIONS_PER_REQUEST, MAX_WRITES_PER_REQUEST } from '../common/limits.js';

/**
 * Hardened request decoding for every service a server adds.
 *
 * grpc-js answers a request that fails to decode with INTERNAL "Error deserializing
 * request" and never tells the application. Our deserializers never throw: they hand the
 * server guard a RefusedRequest instead, which it answers with INVALID_ARGUMENT
 * [MALFORMED_REQUEST] and the decoder's reason, and logs once.
 *
 * They also bound decoding work before it starts. A protobuf repeated field costs two
 * bytes per empty element on the wire but a JavaScript object (and Buffers) per element
 * once decoded: one 30 MB WriteRequest of empty mutations decodes to gigabytes and kills
 * the process. So requests with repeated fields are counted on the wire first and refused
 * with BATCH_TOO_LARGE above the documented limits.
 */
export class RefusedRequest {
  constructor(readonly error: ReplicatorError) {}
}

type Prescan = (bytes: Buffer) => void;

const PRESCANS: Record<string, Prescan> = {
  '/levelreplicator.v1.Master/Write': prescanWriteRequest,
};

const WIRE_LEN = 2;

/**
 * Counts WriteRequest.writes (field 1) and Write.mutations (field 1) on the wire without
 * decoding them; throws BATCH_TOO_LARGE past the limits. Structural errors are left to
 * the real decoder, which reports them.
 */
export function prescanWriteRequest(bytes: Buffer): void {
  const r = protobuf.Reader.create(bytes);
  let writes = 0;
  let mutations = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== 1 || (tag & 7) !== WIRE_LEN) {
      r.skipType(tag & 7);
      continue;
    }
    if (++writes > MAX_WRITES_PER_REQUEST) {
      throw new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `more than ${MAX_WRITES_PER_REQUEST} writes in one request`);
    }
    const end = r.uint32() + r.pos;
    if (end > r.len) return; // truncated: the decoder says so
    while (r.pos < end) {
      const inner = r.uint32();
      if (inner >>> 3 === 1 && (inner & 7) === WIRE_LEN && ++mutations > MAX_MUTATIONS_PER_REQUEST) {
        throw new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `more than ${MAX_MUTATIONS_PER_REQUEST} mutations in one request`);
      }
      r.skipType(inner & 7);
    }
  }
}

function reasonOf(err: unknown): string {
  const msg = String((err as Error)?.message ?? err);
  return msg.length > 200 ? `${msg.slice(0, 200)}…` : msg;
}

/** Wraps one request deserializer: never throws, bounds work, reports why. */
export function hardenDeserializer(path: string, deserialize: grpc.deserialize<unknown>): grpc.deserialize<unknown> {
  const prescan = PRESCANS[path];
  return (bytes: Buffer) => {
    try {
      prescan?.(bytes);
    } catch (err) {
      if (err instanceof ReplicatorError) return new RefusedRequest(err);
      // A wire error: fall through and let the decoder name it.
    }
    try {
      return deserialize(bytes);
    } catch (err) {
      return new RefusedRequest(
        new ReplicatorError(ErrorCode.MALFORMED_REQUEST, `the ${path.slice(path.lastIndexOf('/') + 1)} request is not a valid protobuf message: ${reasonOf(err)}`),
      );
    }
  };
}

/** A copy of a service definition whose request deserializers are hardened. */
export function hardenService<S extends grpc.ServiceDefinition>(service: S): S {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    out[name] = { ...method, requestDeserialize: hardenDeserializer(method.path, method.requestDeserialize) };
  }
  return out as S;
}
