/**
 * Sequence numbers are bigint in code and uint64 on the wire, where proto-loader gives
 * and takes them as decimal strings. These helpers are the only place that converts.
 */
import { ErrorCode, ReplicatorError } from '../common/errors.js';

export const MAX_SEQ = 0xffff_ffff_ffff_ffffn;

export function seqFromWire(value: string | number | undefined | null): bigint {
  if (value === undefined || value === null || value === '') return 0n;
  return BigInt(value);
}

export function seqToWire(seq: bigint): string {
  return seq.toString();
}

/** A seq typed by a user (decimal, 0 … 2^64-1); anything else is INVALID_ARGUMENT. */
export function parseSeq(raw: unknown, name: string): bigint {
  const s = String(raw ?? '').trim();
  if (!/^[0-9]{1,20}$/.test(s) || BigInt(s) > MAX_SEQ) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${name} must be a seq (an integer from 0 to ${MAX_SEQ}), got ${JSON.stringify(s)}`);
  }
  return BigInt(s);
}
