import { encodedBodySize, writeBody, type Mutation } from './entry-codec.js';

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
  private slab: Buffer | undefined;
  private released = false;

  constructor(
    readonly body: Buffer,
    /** End offset in body of each write's body; write i is seq firstSeq + i. */
    readonly ends: Uint32Array,
    /** Key and value bytes, as counted against the request limits. */
    readonly bytes: number,
    /** The pooled slab body is a view of, if it is one (see takeBody). */
    slab?: Buffer,
  ) {
    this.slab = slab;
  }

  /**
   * Gives a pooled body back once the request is done with it (committed or refused):
   * the next request's bytes may then overwrite it. Call it once nothing can read body.
   */
  release(): void {
    this.released = true;
    if (this.slab) bodyPool.give(this.slab);
    this.slab = undefined;
  }

  /** The body, checked: after release() it may hold another request's bytes. */
  get liveBody(): Buffer {
    if (this.released) throw new Error('internal error: a released request body was read');
    return this.body;
  }

  /** Writes (seqs) in the request. */
  get count(): number {
    return this.ends.length;
  }

  startOf(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1];
  }
}

/**
 * Packs writes given as mutation lists, already within the limits (GroupCommitter.submit,
 * the benchmark, tests). Requests from the network are packed by the Write decoder as it
 * reads them (write-request-decoder.ts, GrowingBody below).
 */
export function prepareWrites(writes: readonly (readonly Mutation[])[], bytes: number): PreparedWrites {
  let total = 0;
  for (const w of writes) total += encodedBodySize(w);
  const { body, slab } = takeBody(total);
  const ends = new Uint32Array(writes.length);
  let o = 0;
  for (let i = 0; i < writes.length; i++) {
    o = writeBody(body, o, writes[i]);
    ends[i] = o;
  }
  return new PreparedWrites(body, ends, bytes, slab);
}

/**
 * Reusable memory for request bodies. Why: a body lives from its request's arrival until
 * its group's fsync, long enough to be promoted to V8's old generation, where a dropped
 * Buffer's memory waits for the next full garbage collection (about 64 MiB of ArrayBuffer
 * memory later). Pooled, the master's anonymous memory under a full write load measured
 * about 10 MB lower. Only bodies of POOLED_MIN_BYTES to SLAB_BYTES are pooled: a small
 * request does not pin a whole slab, a large one gets its own buffer as before.
 *
 * Invariant: a slab is either in the free list or lent to exactly one PreparedWrites.
 */
class BodyPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly slabBytes: number,
    readonly minPooledBytes: number,
    private readonly maxFree: number,
  ) {}

  take(size: number): { body: Buffer; slab: Buffer | undefined } {
    if (size < this.minPooledBytes || size > this.slabBytes) return { body: Buffer.allocUnsafe(size), slab: undefined };
    const slab = this.takeSlab();
    return { body: slab.subarray(0, size), slab };
  }

  takeSlab(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes);
  }

  give(slab: Buffer): void {
    if (this.free.length < this.maxFree) this.free.push(slab);
  }
}

const SLAB_BYTES = 256 * 1024;
const POOLED_MIN_BYTES = 16 * 1024;
/** Free slabs kept: enough for the requests of 32 busy clients (8 MiB). */
const MAX_FREE_SLABS = 32;
const bodyPool = new BodyPool(SLAB_BYTES, POOLED_MIN_BYTES, MAX_FREE_SLABS);

/** A buffer of exactly size bytes for a request body, and the pooled slab it is a view of, if any. */
export function takeBody(size: number): { body: Buffer; slab: Buffer | undefined } {
  return bodyPool.take(size);
}

/**
 * A body written while its request is decoded, before its size is known (the Write
 * decoder reads a request once, see write-request-decoder.ts). Writing starts in a pooled
 * slab, so the finished body ends up where takeBody(size) would have put it without a
 * copy: in the slab when it is a pooled size, copied out of it when it is smaller (a small
 * request does not pin a slab). A body outgrowing the slab moves, once in the usual case,
 * to its own buffer sized by the caller's estimate of the whole body.
 *
 * Invariant: the slab, while held, is lent to this builder alone; finish() passes it on to
 * the PreparedWrites, abandon() gives it back.
 */
export class GrowingBody {
  /** Where the body is written; bytes past what the caller wrote are undefined. */
  buf: Buffer;
  private slab: Buffer | undefined;
  private grown = false;

  constructor() {
    this.slab = bodyPool.takeSlab();
    this.buf = this.slab;
  }

  /**
   * Room for n more bytes after the first `used`: returns the buffer to write to from now
   * on (the used bytes copied over). estimate: the caller's guess at the whole body's size.
   */
  grow(used: number, n: number, estimate: number): Buffer {
    // A second move means the estimate was short: grow geometrically from then on.
    const capacity = Math.max(used + n, estimate, this.grown ? Math.ceil(this.buf.length * 1.5) : 0);
    const next = Buffer.allocUnsafe(capacity);
    this.buf.copy(next, 0, 0, used);
    this.abandon();
    this.buf = next;
    this.grown = true;
    return next;
  }

  /** The body, its first size bytes, and the pooled slab it is a view of, if any. */
  finish(size: number): { body: Buffer; slab: Buffer | undefined } {
    const slab = this.slab;
    if (slab && size < POOLED_MIN_BYTES) {
      const body = Buffer.allocUnsafe(size);
      slab.copy(body, 0, 0, size);
      this.abandon();
      return { body, slab: undefined };
    }
    this.slab = undefined;
    return { body: this.buf.subarray(0, size), slab };
  }

  /** Gives the slab back (the request was refused, or the body moved out of it). */
  abandon(): void {
    if (this.slab) bodyPool.give(this.slab);
    this.slab = undefined;
  }
}

