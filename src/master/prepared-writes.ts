import { encodedBodySize, writeBody, type Mutation } from '../common/entry-codec.js';

/**
 * The writes of one validated request, packed for the group committer: each write's
 * mutations already laid out as an entry body (mutation count and mutations, see
 * entry-codec.ts), all bodies back to back in ONE buffer. At commit the committer only
 * adds each entry's seq, commit time and chained checksum.
 *
 * Why: a request waits for the group before it and for its own group's fsync. Kept as
 * objects (a Write, a Mutation, a key and a value view per entry) every waiting entry
 * survived garbage collections and was promoted to the old generation; packed, a request
 * is three objects whatever its size.
 *
 * Invariant: ends is strictly increasing, ends[count - 1] === body.length, and each
 * body[ends[i - 1] ?? 0, ends[i]) is a well-formed body that passed the request limits.
 */
export class PreparedWrites {
  constructor(
    readonly body: Buffer,
    /** End offset in body of each write's body; write i is seq firstSeq + i. */
    readonly ends: Uint32Array,
    /** Key and value bytes, as counted against the request limits. */
    readonly bytes: number,
  ) {}

  /** Writes (seqs) in the request. */
  get count(): number {
    return this.ends.length;
  }

  startOf(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1];
  }
}

/** Packs writes that validateWrites (or a test) produced. */
export function prepareWrites(writes: readonly (readonly Mutation[])[], bytes: number): PreparedWrites {
  let total = 0;
  for (const w of writes) total += encodedBodySize(w);
  const body = Buffer.allocUnsafe(total);
  const ends = new Uint32Array(writes.length);
  let o = 0;
  for (let i = 0; i < writes.length; i++) {
    o = writeBody(body, o, writes[i]);
    ends[i] = o;
  }
  return new PreparedWrites(body, ends, bytes);
}
