/**
 * The newest encoded log entries, in memory, so followers that keep up are served
 * without reading LevelDB (entries are encoded once, at commit, never per follower).
 *
 * The entries' bytes are copied into one ring buffer, allocated once, instead of keeping
 * the committer's chunk Buffers alive. Why: a cached chunk lives long enough to be
 * promoted to V8's old generation, and once dropped from the cache its memory is only
 * given back at the next full garbage collection, which V8 starts about 64 MiB of
 * ArrayBuffer memory later. Under the benchmark's write load (row 7) that garbage was
 * about 45 MB of the master's 190 MB of anonymous memory; the ring holds a fixed 8 MiB
 * (about 55,000 entries of 150 bytes, some 200 ms of writes at full speed), and the
 * committer's chunks now die young. Bounded by entry count and by the ring's bytes.
 *
 * Invariant: the cache holds the consecutive seqs [firstSeq, firstSeq + size), whose
 * bytes lie at virtual offsets [starts[head], end), a span of at most capacityBytes
 * (offset o is ring byte o % capacityBytes), so no two cached entries overlap.
 */
export class TailCache {
  private ring: Buffer | undefined; // allocated at the first append
  private readonly starts: Float64Array; // virtual offset of each cached entry, by slot
  private readonly lengths: Int32Array;
  private head = 0; // slot of firstSeq
  private size = 0;
  private first = 1n;
  private end = 0; // virtual offset just past the newest entry
  private dropped = 0; // entries dropped by the append in progress, not yet added to first

  constructor(
    private readonly maxEntries = 65_536,
    private readonly capacityBytes = 8 * 1024 * 1024,
  ) {
    this.starts = new Float64Array(maxEntries);
    this.lengths = new Int32Array(maxEntries);
  }

  /** Appends (copies) entries with seqs fromSeq, fromSeq + 1, ...; a non-consecutive append resets the cache. */
  append(fromSeq: bigint, entries: readonly Buffer[]): void {
    if (this.size > 0 && fromSeq !== this.first + BigInt(this.size)) this.clear();
    for (let i = 0; i < entries.length; i++) this.push(fromSeq, i, entries[i], 0, entries[i].length);
    this.settleFirst();
  }

  /** append() for entries given as src[starts[i], ends[i]) (a group commit's encoding, see log-chunk.ts). */
  appendEncoded(fromSeq: bigint, src: Buffer, starts: Uint32Array, ends: Uint32Array): void {
    if (this.size > 0 && fromSeq !== this.first + BigInt(this.size)) this.clear();
    for (let i = 0; i < starts.length; i++) this.push(fromSeq, i, src, starts[i], ends[i]);
    this.settleFirst();
  }

  /**
   * Consecutive entries from fromSeq, up to the limits; undefined when fromSeq is not cached.
   * The Buffers are views into the ring, valid until the next append(): encode or copy
   * them before anything that can let a commit run (any await).
   */
  read(fromSeq: bigint, maxEntries: number, maxBytes: number): Buffer[] | undefined {
    if (this.size === 0 || fromSeq < this.first || fromSeq >= this.first + BigInt(this.size)) return undefined;
    const offset = Number(fromSeq - this.first);
    const out: Buffer[] = [];
    let bytes = 0;
    for (let i = offset; i < this.size && out.length < maxEntries; i++) {
      const slot = (this.head + i) % this.maxEntries;
      const length = this.lengths[slot];
      if (out.length > 0 && bytes + length > maxBytes) break;
      const at = this.starts[slot] % this.capacityBytes;
      out.push(this.ring!.subarray(at, at + length));
      bytes += length;
    }
    return out;
  }

  /** The entry at seq, as a copy of its own (safe to keep), or undefined when not cached. */
  get(seq: bigint): Buffer | undefined {
    const view = this.read(seq, 1, Infinity)?.[0];
    return view && Buffer.from(view);
  }

  clear(): void {
    this.head = 0;
    this.size = 0;
    this.dropped = 0;
  }

  /** Appends entry i of a run starting at seq base (firstSeq is settled when the append ends). */
  private push(base: bigint, i: number, src: Buffer, srcStart: number, srcEnd: number): void {
    const length = srcEnd - srcStart;
    if (length > this.capacityBytes) {
      // Larger than the whole ring: not cached, and nothing before it stays (no holes).
      this.clear();
      return;
    }
    let start = this.end;
    const at = start % this.capacityBytes;
    if (at + length > this.capacityBytes) start += this.capacityBytes - at; // wrap to the ring's start
    // Make room: drop the oldest entries the new bytes would overwrite, and free a slot.
    let dropped = 0;
    while (this.size > 0 && (start + length - this.starts[this.head] > this.capacityBytes || this.size === this.maxEntries)) {
      this.head = (this.head + 1) % this.maxEntries;
      this.size--;
      dropped++;
    }
    if (this.size === 0) {
      this.first = base + BigInt(i);
      this.dropped = 0;
    } else {
      this.dropped += dropped;
    }
    const slot = (this.head + this.size) % this.maxEntries;
    this.starts[slot] = start;
    this.lengths[slot] = length;
    this.ring ??= Buffer.allocUnsafeSlow(this.capacityBytes);
    src.copy(this.ring, start % this.capacityBytes, srcStart, srcEnd);
    this.size++;
    this.end = start + length;
  }

  /** Ends an append: firstSeq moves past what it dropped (once, not a bigint per entry). */
  private settleFirst(): void {
    if (this.dropped > 0) this.first += BigInt(this.dropped);
    this.dropped = 0;
  }
}
