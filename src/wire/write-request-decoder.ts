import type * as grpc from '@grpc/grpc-js';
import { MutationKind } from './entry-codec.js';
import type { Mutation__Output } from './generated/levelreplicator/v1/Mutation.js';
import type { Write__Output } from './generated/levelreplicator/v1/Write.js';
import type { WriteRequest__Output } from './generated/levelreplicator/v1/WriteRequest.js';
import {
  MAX_KEY_BYTES,
  MAX_MUTATIONS_PER_REQUEST,
  MAX_MUTATIONS_PER_WRITE,
  MAX_REQUEST_BYTES,
  MAX_VALUE_BYTES,
  MAX_WRITES_PER_REQUEST,
} from '../common/limits.js';
import { readLengthEnd, readVarint28, type Cursor } from './protobuf-wire.js';
import { PreparedWrites, takeBody } from './prepared-writes.js';

/**
 * A fast path for decoding Master.Write requests, the master's hottest input.
 *
 * proto-loader decodes each Mutation into a protobufjs message, then into a plain object;
 * validation then builds a third. This decoder reads the wire format once, checks the
 * request against the documented limits, and packs it straight into PreparedWrites (one
 * buffer of entry bodies), which the Write handler takes with preparedOf(). It handles
 * exactly the valid requests of today's schema with no acknowledgement policy: anything
 * else (another field, an unknown kind or tag, a malformed message, a request the limits
 * refuse) goes to the generic deserializer and the handler's validation, which decode,
 * accept or refuse it exactly as before. Unit tests check both paths agree.
 *
 * The request object it returns is what proto-loader would give; its `writes` are only
 * built if something reads them, and only until the handler releases the packed body
 * (PreparedWrites.release: the memory is reused; reading them later throws).
 */
export function fastWriteRequestDeserializer(generic: grpc.deserialize<WriteRequest__Output>): grpc.deserialize<WriteRequest__Output> {
  return (bytes: Buffer) => {
    const prepared = decodePrepared(bytes);
    if (!prepared) return generic(bytes);
    // Every other field (the acknowledgement policy, say) absent, at its default as the
    // generic decoder gives it for an empty message (fresh each time: nothing shared).
    const req = generic(EMPTY);
    let writes: Write__Output[] | undefined;
    Object.defineProperty(req, 'writes', { enumerable: true, get: () => (writes ??= writesOf(prepared)) });
    Object.defineProperty(req, PREPARED, { value: prepared });
    return req;
  };
}

/** A copy of the Master service definition whose Write requests take the fast path. */
export function withFastWriteDecoding<S extends grpc.ServiceDefinition>(service: S): S {
  const write = service.Write as grpc.MethodDefinition<WriteRequest__Output, unknown>;
  return { ...service, Write: { ...write, requestDeserialize: fastWriteRequestDeserializer(write.requestDeserialize) } };
}

const PREPARED = Symbol('prepared writes');

/** The packed writes of a request the fast path decoded (and validated), if it did. */
export function preparedOf(req: WriteRequest__Output): PreparedWrites | undefined {
  return (req as { [PREPARED]?: PreparedWrites })[PREPARED];
}

const EMPTY = Buffer.alloc(0);
const LEN_FIELD_1 = 0x0a; // field 1, wire type 2 (length-delimited)
const VARINT_FIELD_1 = 0x08;
const LEN_FIELD_2 = 0x12;
const LEN_FIELD_3 = 0x1a;

/** One mutation's fields while parsing (reused: no allocation per mutation). */
interface Fields {
  kind: number;
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
}

/** The request's writes, validated and packed, or undefined when the fast path does not handle it. */
export function decodePrepared(buf: Buffer): PreparedWrites | undefined {
  const f: Fields = { kind: 0, keyStart: 0, keyEnd: 0, valueStart: 0, valueEnd: 0 };
  // Pass 1: structure and limits, and the size of the bodies.
  const r: Cursor = { pos: 0 };
  let writes = 0;
  let mutations = 0;
  let bytes = 0;
  let size = 0;
  while (r.pos < buf.length) {
    if (buf[r.pos++] !== LEN_FIELD_1 || ++writes > MAX_WRITES_PER_REQUEST) return undefined;
    const end = readLengthEnd(buf, r);
    if (end < 0) return undefined;
    let inWrite = 0;
    size += 4;
    while (r.pos < end) {
      if (buf[r.pos++] !== LEN_FIELD_1) return undefined;
      const mEnd = readLengthEnd(buf, r, end);
      if (mEnd < 0 || !parseMutation(buf, r, mEnd, f)) return undefined;
      if (++inWrite > MAX_MUTATIONS_PER_WRITE || ++mutations > MAX_MUTATIONS_PER_REQUEST) return undefined;
      const keyLen = f.keyEnd - f.keyStart;
      if (keyLen === 0 || keyLen > MAX_KEY_BYTES) return undefined;
      size += 5 + keyLen;
      bytes += keyLen;
      if (f.kind === MutationKind.PUT) {
        const valueLen = f.valueEnd - f.valueStart;
        if (valueLen > MAX_VALUE_BYTES) return undefined;
        size += 4 + valueLen;
        bytes += valueLen;
      }
    }
    if (inWrite === 0) return undefined;
  }
  if (writes === 0 || bytes > MAX_REQUEST_BYTES) return undefined;
  // Pass 2: the bodies (the structure is known to be good).
  const { body, slab } = takeBody(size);
  const ends = new Uint32Array(writes);
  r.pos = 0;
  let o = 0;
  for (let w = 0; w < writes; w++) {
    r.pos++;
    const end = readLengthEnd(buf, r);
    const countAt = o;
    let count = 0;
    o += 4;
    while (r.pos < end) {
      r.pos++;
      parseMutation(buf, r, readLengthEnd(buf, r, end), f);
      count++;
      body[o] = f.kind;
      body.writeUInt32BE(f.keyEnd - f.keyStart, o + 1);
      o += 5 + buf.copy(body, o + 5, f.keyStart, f.keyEnd);
      if (f.kind === MutationKind.PUT) {
        body.writeUInt32BE(f.valueEnd - f.valueStart, o);
        o += 4 + buf.copy(body, o + 4, f.valueStart, f.valueEnd);
      }
    }
    body.writeUInt32BE(count, countAt);
    ends[w] = o;
  }
  return new PreparedWrites(body, ends, bytes, slab);
}

/** Reads one Mutation's fields (the last of a repeated field wins, as in protobuf); false if not handled. */
function parseMutation(buf: Buffer, r: Cursor, end: number, f: Fields): boolean {
  f.kind = MutationKind.PUT;
  f.keyStart = f.keyEnd = f.valueStart = f.valueEnd = 0;
  while (r.pos < end) {
    const tag = buf[r.pos++];
    if (tag === VARINT_FIELD_1) {
      const k = readVarint28(buf, r, end);
      if (k !== MutationKind.PUT && k !== MutationKind.DELETE) return false; // unknown kinds: the generic path names them
      f.kind = k;
    } else if (tag === LEN_FIELD_2 || tag === LEN_FIELD_3) {
      const fEnd = readLengthEnd(buf, r, end);
      if (fEnd < 0) return false;
      if (tag === LEN_FIELD_2) {
        f.keyStart = r.pos;
        f.keyEnd = fEnd;
      } else {
        f.valueStart = r.pos;
        f.valueEnd = fEnd;
      }
      r.pos = fEnd;
    } else {
      return false;
    }
  }
  return r.pos === end;
}

/** The writes of a prepared request as proto-loader objects (views into its body, so not after release()). */
function writesOf(p: PreparedWrites): Write__Output[] {
  const out: Write__Output[] = [];
  const b = p.liveBody;
  for (let i = 0; i < p.count; i++) {
    let o = p.startOf(i) + 4;
    const mutations: Mutation__Output[] = [];
    while (o < p.ends[i]) {
      const kind = b[o];
      const keyEnd = o + 5 + b.readUInt32BE(o + 1);
      const key = b.subarray(o + 5, keyEnd);
      o = keyEnd;
      if (kind === MutationKind.PUT) {
        const valueEnd = o + 4 + b.readUInt32BE(o);
        mutations.push({ kind: 'PUT', key, value: b.subarray(o + 4, valueEnd) });
        o = valueEnd;
      } else {
        mutations.push({ kind: 'DELETE', key, value: EMPTY });
      }
    }
    out.push({ mutations });
  }
  return out;
}
