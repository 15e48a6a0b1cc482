import protobuf from 'protobufjs/minimal.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../../src/common/errors.js';
import { MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import {
  MAX_KEY_BYTES,
  MAX_MUTATIONS_PER_REQUEST,
  MAX_MUTATIONS_PER_WRITE,
  MAX_REQUEST_BYTES,
  MAX_VALUE_BYTES,
  MAX_WRITES_PER_REQUEST,
} from '../../src/common/limits.js';
import type { Write__Output } from '../../src/wire/generated/levelreplicator/v1/Write.js';
import type { WriteRequest__Output } from '../../src/wire/generated/levelreplicator/v1/WriteRequest.js';
import { prepareWrites, type PreparedWrites } from '../../src/wire/prepared-writes.js';
import { replicatorProto } from '../../src/wire/proto.js';

/**
 * The master's Write path as it was before the one-pass decoder took it over, as an
 * independent oracle for write-request-decoder.ts: the wire count (request-decoding.ts
 * prescanWriteRequest), proto-loader's decoding, then the validation of the decoded
 * request (write-validation.ts validateWrites), each unchanged but for its home. Its codes
 * and messages are the documented ones; the decoder must give the same.
 */
export function prescanWriteRequest(bytes: Buffer): void {
  const r = protobuf.Reader.create(bytes);
  let writes = 0;
  let mutations = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== 1 || (tag & 7) !== 2) {
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
      if (inner >>> 3 === 1 && (inner & 7) === 2 && ++mutations > MAX_MUTATIONS_PER_REQUEST) {
        throw new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `more than ${MAX_MUTATIONS_PER_REQUEST} mutations in one request`);
      }
      r.skipType(inner & 7);
    }
  }
}

/** What the old path made of a request: its packed writes, or the error refusing it ('MALFORMED' when it did not decode). */
export function oldWritePath(bytes: Buffer): PreparedWrites | { code: string; message: string } | 'MALFORMED' {
  try {
    try {
      prescanWriteRequest(bytes);
    } catch (err) {
      if (isReplicatorError(err)) throw err;
    }
    let decoded: WriteRequest__Output;
    try {
      decoded = replicatorProto().Master.service.Write.requestDeserialize(bytes) as WriteRequest__Output;
    } catch {
      return 'MALFORMED';
    }
    const v = validateWrites(decoded.writes);
    return prepareWrites(v.writes, v.bytes);
  } catch (err) {
    if (isReplicatorError(err)) return { code: err.code, message: err.message };
    throw err;
  }
}

function checkKey(key: Buffer, where = ''): void {
  if (key.length === 0) throw new ReplicatorError(ErrorCode.EMPTY_KEY, `key must not be empty${where}`);
  if (key.length > MAX_KEY_BYTES) {
    throw new ReplicatorError(ErrorCode.KEY_TOO_LARGE, `key is ${key.length} bytes${where}; the limit is ${MAX_KEY_BYTES}`);
  }
}

function checkValue(value: Buffer, where = ''): void {
  if (value.length > MAX_VALUE_BYTES) {
    throw new ReplicatorError(ErrorCode.VALUE_TOO_LARGE, `value is ${value.length} bytes${where}; the limit is ${MAX_VALUE_BYTES}`);
  }
}

export function validateWrites(writes: readonly Write__Output[]): { writes: Mutation[][]; bytes: number } {
  if (writes.length === 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, 'a write request needs at least one write');
  if (writes.length > MAX_WRITES_PER_REQUEST) {
    throw new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `${writes.length} writes in one request; the limit is ${MAX_WRITES_PER_REQUEST}`);
  }
  let bytes = 0;
  let mutations = 0;
  const out: Mutation[][] = new Array(writes.length);
  for (let i = 0; i < writes.length; i++) {
    const ms = writes[i].mutations;
    if (ms.length === 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `write ${i} has no mutations`);
    if (ms.length > MAX_MUTATIONS_PER_WRITE) {
      throw new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `write ${i} has ${ms.length} mutations; the limit is ${MAX_MUTATIONS_PER_WRITE}`);
    }
    mutations += ms.length;
    if (mutations > MAX_MUTATIONS_PER_REQUEST) {
      throw new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `more than ${MAX_MUTATIONS_PER_REQUEST} mutations in one request`);
    }
    const muts: Mutation[] = new Array(ms.length);
    for (let j = 0; j < ms.length; j++) {
      const m = ms[j];
      const where = writes.length > 1 || ms.length > 1 ? ` (write ${i}, mutation ${j})` : '';
      checkKey(m.key, where);
      bytes += m.key.length;
      if (m.kind === 'DELETE') {
        muts[j] = { kind: MutationKind.DELETE, key: m.key };
      } else if (m.kind === 'PUT') {
        checkValue(m.value, where);
        bytes += m.value.length;
        muts[j] = { kind: MutationKind.PUT, key: m.key, value: m.value };
      } else {
        throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `unknown mutation kind ${String(m.kind)}${where}`);
      }
    }
    out[i] = muts;
  }
  if (bytes > MAX_REQUEST_BYTES) {
    throw new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `request carries ${bytes} bytes of keys and values; the limit is ${MAX_REQUEST_BYTES}`);
  }
  return { writes: out, bytes };
}
