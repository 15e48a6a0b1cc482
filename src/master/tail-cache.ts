/**
 * The newest encoded log entries, in memory, so followers that keep up are served
 * without reading LevelDB and every follower is sent the same Buffer objects (entries
 * are encoded once, at commit, never per follower). Bounded by entry count and bytes.
 *
 * Invariant: the cache holds the consecutive seqs [firstSeq, firstSeq + size).
 */
export class TailCache {
  private readonly ring: (Buffer | undefined)[];
  private head = 0; // ring index of firstSeq
  private size = 0;
  private bytes = 0;
  private first = 1n;

  constructor(
    private readonly maxEntries = 65_536,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {
    this.ring = new Array(maxEntries);
  }

  /** Appends entries with seqs fromSeq, fromSeq + 1, ...; a non-consecutive append resets the cache. */
  append(fromSeq: bigint, entries: readonly Buffer[]): void {
    if (this.size > 0 && fromSeq !== this.first + BigInt(this.size)) this.clear();
    if (this.size === 0) this.first = fromSeq;
    for (const e of entries) {
      if (this.size === this.maxEntries) this.dropFirst();
      this.ring[(this.head + this.size) % this.maxEntries] = e;
      this.size++;
      this.bytes += e.length;
    }
    while (this.bytes > this.maxBytes && this.size > 1) this.dropFirst();
  }

  /** Consecutive entries from fromSeq, up to the limits; undefined when fromSeq is not cached. */
  read(fromSeq: bigint, maxEntries: number, maxBytes: number): Buffer[] | undefined {
    if (this.size === 0 || fromSeq < this.first || fromSeq >= this.first + BigInt(this.size)) return undefined;
    const offset = Number(fromSeq - this.first);
    const out: Buffer[] = [];
    let bytes = 0;
    for (let i = offset; i < this.size && out.length < maxEntries; i++) {
      const e = this.ring[(this.head + i) % this.maxEntries]!;
      if (out.length > 0 && bytes + e.length > maxBytes) break;
      out.push(e);
      bytes += e.length;
    }
    return out;
  }

  get(seq: bigint): Buffer | undefined {
    return this.read(seq, 1, Infinity)?.[0];
  }

  clear(): void {
    this.ring.fill(undefined);
    this.head = 0;
    this.size = 0;
    this.bytes = 0;
  }

  private dropFirst(): void {
    this.bytes -= this.ring[this.head]!.length;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.maxEntries;
    this.size--;
    this.first++;
  }
}
