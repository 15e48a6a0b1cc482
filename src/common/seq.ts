/**
 * Sequence numbers are bigint in code and uint64 on the wire, where proto-loader gives
 * and takes them as decimal strings. These helpers are the only place that converts.
 */
export const MAX_SEQ = 0xffff_ffff_ffff_ffffn;

export function seqFromWire(value: string | number | undefined | null): bigint {
  if (value === undefined || value === null || value === '') return 0n;
  return BigInt(value);
}

export function seqToWire(seq: bigint): string {
  return seq.toString();
}
