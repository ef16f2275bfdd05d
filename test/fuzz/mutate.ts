/**
 * Seeded byte mutations for the protocol fuzzers: the classic dumb-fuzzer
 * operators (AFL's bit flips, interesting values, block insert/delete/
 * duplicate, truncation) over real captured packets, so most inputs get past
 * the first length check and reach the deeper parsing. Deterministic from the
 * seed, so a failure is replayed by its seed and index.
 */

/** xorshift32: small, fast, deterministic; Math.random cannot be seeded. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) || 0x9e3779b9;
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }
  /** 0..n-1 */
  int(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

/** Values that break length and bounds arithmetic (AFL's "interesting" bytes). */
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x10, 0x20, 0x40, 0x64];

/** One to eight stacked mutations of `input` (a new Buffer; the input is not touched). */
export function mutate(rng: Rng, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const n = 1 + rng.int(8);
  for (let k = 0; k < n; k++) {
    const at = b.length ? rng.int(b.length) : 0;
    switch (rng.int(9)) {
      case 0: // flip one bit
        if (b.length) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1: // a random byte
        if (b.length) b[at] = rng.u32() & 0xff;
        break;
      case 2: // an interesting byte (lengths, counts, terminators)
        if (b.length) b[at] = rng.pick(INTERESTING);
        break;
      case 3: { // an interesting 16-bit value, either byte order
        if (b.length < 2) break;
        const v = rng.pick([0, 1, 0x7fff, 0x8000, 0xffff, 0xfffe, 512, 65464]);
        const o = Math.min(at, b.length - 2);
        if (rng.chance(0.5)) b.writeUInt16BE(v, o); else b.writeUInt16LE(v, o);
        break;
      }
      case 4: // truncate
        b = b.subarray(0, at);
        break;
      case 5: { // delete a block
        const len = 1 + rng.int(Math.max(1, Math.min(32, b.length - at)));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        break;
      }
      case 6: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(32)), b.subarray(at)]);
        break;
      case 7: { // duplicate a block (repeated options, repeated strings)
        const len = 1 + rng.int(Math.max(1, Math.min(64, b.length - at)));
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      }
      case 8: // append garbage
        b = Buffer.concat([b, rng.bytes(1 + rng.int(64))]);
        break;
    }
  }
  return b;
}

/** Heap in use after a full collection, MiB (`gc` is exposed by the caller, see exposeGc). */
export function heapMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

/** Make `gc()` callable without --expose-gc on the command line (vitest runs our file in its own worker). */
export async function exposeGc(): Promise<void> {
  if ((globalThis as { gc?: unknown }).gc) return;
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  (globalThis as { gc?: unknown }).gc = vm.runInNewContext('gc');
}
export function heapGrowth(samples: number[]): number {
  if (samples.length < 2) return 0;
  const firstHalf = samples.slice(0, Math.max(1, Math.floor(samples.length / 2)));
  return samples.at(-1)! - Math.min(...firstHalf);
}
