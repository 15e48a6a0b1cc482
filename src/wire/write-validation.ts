import { ErrorCode, ReplicatorError } from '../common/errors.js';
import {
  MAX_KEY_BYTES,
  MAX_MUTATIONS_PER_REQUEST,
  MAX_MUTATIONS_PER_WRITE,
  MAX_REQUEST_BYTES,
  MAX_VALUE_BYTES,
  MAX_WRITES_PER_REQUEST,
} from '../common/limits.js';

/**
 * The documented write limits (common/limits.ts) as errors: the one place their codes and
 * messages are spelled. The master's Write decoder (write-request-decoder.ts) checks every
 * request against them as it reads it; the CLIs check keys and values (checkKey,
 * checkValue) before they send anything; Get checks its key.
 */

/** The error for a key of this many bytes, if it breaks a limit. */
export function keyError(length: number, where = ''): ReplicatorError | undefined {
  if (length === 0) return new ReplicatorError(ErrorCode.EMPTY_KEY, `key must not be empty${where}`);
  if (length > MAX_KEY_BYTES) return new ReplicatorError(ErrorCode.KEY_TOO_LARGE, `key is ${length} bytes${where}; the limit is ${MAX_KEY_BYTES}`);
  return undefined;
}

/** The error for a value of this many bytes, if it breaks a limit. */
export function valueError(length: number, where = ''): ReplicatorError | undefined {
  if (length > MAX_VALUE_BYTES) return new ReplicatorError(ErrorCode.VALUE_TOO_LARGE, `value is ${length} bytes${where}; the limit is ${MAX_VALUE_BYTES}`);
  return undefined;
}

export function checkKey(key: Buffer, where = ''): void {
  const error = keyError(key.length, where);
  if (error) throw error;
}

export function checkValue(value: Buffer, where = ''): void {
  const error = valueError(value.length, where);
  if (error) throw error;
}

/** Where a mutation is, in an error about it: nothing when the request holds just the one. */
export function mutationPlace(write: number, mutation: number, writesInRequest: number, mutationsInWrite: number): string {
  return writesInRequest > 1 || mutationsInWrite > 1 ? ` (write ${write}, mutation ${mutation})` : '';
}

/** The request-level limits. The two counts are refused while the request is read, before anything past them. */
export const WriteLimit = {
  noWrites: () => new ReplicatorError(ErrorCode.INVALID_ARGUMENT, 'a write request needs at least one write'),
  tooManyWrites: () => new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `more than ${MAX_WRITES_PER_REQUEST} writes in one request`),
  tooManyMutations: () => new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `more than ${MAX_MUTATIONS_PER_REQUEST} mutations in one request`),
  noMutations: (write: number) => new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `write ${write} has no mutations`),
  tooManyInWrite: (write: number, mutations: number) =>
    new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `write ${write} has ${mutations} mutations; the limit is ${MAX_MUTATIONS_PER_WRITE}`),
  unknownKind: (kind: number, where: string) => new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `unknown mutation kind ${kind}${where}`),
  tooManyBytes: (bytes: number) =>
    new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `request carries ${bytes} bytes of keys and values; the limit is ${MAX_REQUEST_BYTES}`),
};
