import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { MutationKind, type Mutation } from './entry-codec.js';
import {
  MAX_KEY_BYTES,
  MAX_MUTATIONS_PER_REQUEST,
  MAX_MUTATIONS_PER_WRITE,
  MAX_REQUEST_BYTES,
  MAX_VALUE_BYTES,
  MAX_WRITES_PER_REQUEST,
} from '../common/limits.js';
import type { Write__Output } from './generated/levelreplicator/v1/Write.js';

export function checkKey(key: Buffer, where = ''): void {
  if (key.length === 0) throw new ReplicatorError(ErrorCode.EMPTY_KEY, `key must not be empty${where}`);
  if (key.length > MAX_KEY_BYTES) {
    throw new ReplicatorError(ErrorCode.KEY_TOO_LARGE, `key is ${key.length} bytes${where}; the limit is ${MAX_KEY_BYTES}`);
  }
}

export function checkValue(value: Buffer, where = ''): void {
  if (value.length > MAX_VALUE_BYTES) {
    throw new ReplicatorError(ErrorCode.VALUE_TOO_LARGE, `value is ${value.length} bytes${where}; the limit is ${MAX_VALUE_BYTES}`);
  }
}

/**
 * Checks a whole Write request against the documented limits and turns it into
 * mutation lists, one per seq. Throws before anything is written, so a bad request
 * never changes stored data.
 */
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
