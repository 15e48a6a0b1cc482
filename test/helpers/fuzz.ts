/**
 * Deterministic fuzzing helpers: a seeded PRNG (mulberry32) and byte mutators. A failing
 * case prints its seed; LR_FUZZ_SEED and LR_FUZZ_ITERATIONS replay it or run longer.
 */
export const FUZZ_SEED = Number(process.env.LR_FUZZ_SEED ?? 0x5eed1e55);
export function fuzzIterations(defaultCount: number): number {
  return Number(process.env.LR_FUZZ_ITERATIONS ?? defaultCount);
}

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  bytes(length: number): Buffer {
    const b = Buffer.alloc(length);
    for (let i = 0; i < length; i++) b[i] = this.int(256);
    return b;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/** Values that tend to break length and count fields. */
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x08, 0x10];

/** Applies 1 to 4 random mutations: bit flips, byte sets, inserts, deletes, truncation, duplication. */
export function mutate(rng: Rng, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    const at = b.length === 0 ? 0 : rng.int(b.length);
    switch (rng.int(7)) {
      case 0:
        if (b.length > 0) b[at] ^= 1 << rng.int(8);
        break;
      case 1:
        if (b.length > 0) b[at] = rng.pick(INTERESTING);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(8)))]);
        break;
      case 4:
        b = b.subarray(0, at);
        break;
      case 5: {
        const end = Math.min(b.length, at + 1 + rng.int(16));
        b = Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
        break;
      }
      default:
        if (b.length > 0) b[at] = rng.int(256);
    }
  }
  return b;
}
