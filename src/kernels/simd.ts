// The WebAssembly SIMD kernels (assembly/, compiled to dist/kernels/kernels.wasm): loading them
// once per thread, laying out their memory, and copying tensors in and results out.
import { existsSync, readFileSync } from 'node:fs';
import { ResourceError } from '../errors.js';
import { packagePath } from '../paths.js';
import { RangeReader } from '../ir/file-range.js';
import { readFloats, type FloatSource } from '../ir/tensor.js';
import type { HalfConversion, HalfFigures } from '../ir/half.js';
import { weightErrorOf, type WeightError } from './weight-error.js';
import { part, PROGRESS_CHUNK, type JobProgress } from './progress.js';

/**
 * colGroups and rowGroups: quantize the values at `src` ([rows, length] for row groups, [R, C] for
 * groups of rows in each column) in groups of B, writing codes, scales, zero points and figures.
 */
type GroupKernel = (
  src: number,
  rows: number,
  length: number,
  B: number,
  codes: number,
  scales: number,
  zeros: number,
  mode: number,
  qmin: number,
  qmax: number,
  zpSym: number,
  ratios: number,
  nRatios: number,
  stats: number,
  scratch: number,
) => void;

interface Exports {
  colGroups: GroupKernel;
  rowGroups: GroupKernel;
  packPairs(codes: number, n: number, out: number): void;
  packMatMulNBits(codes: number, K: number, N: number, block: number, shift: number, zeros: number, out: number): void;
  transpose32(src: number, rows: number, cols: number, dst: number): void;
  magnitudeHistogram(src: number, n: number, shift: number, digitMask: number, prefixMask: number, prefix: number, hist: number): void;
  pruneBelow(src: number, n: number, threshold: number, ties: number): number;
  pruneError(src: number, n: number, threshold: number, ties: number, out: number): void;
  nmRows(src: number, rows: number, inner: number, n: number, m: number, scratch: number, out: number): void;
  sortFloats(src: number, tmp: number, n: number, hist: number): void;
  sortKeys(src: number, lo: number, hi: number, hist: number): void;
  sortOffsets(from: number, n: number, hist: number, b: number): number;
  sortScatter(from: number, to: number, lo: number, hi: number, hist: number, b: number): void;
  sortUnkeys(from: number, dst: number, lo: number, hi: number): void;
  countBoundsBelow(src: number, n: number, bounds: number, nb: number, codes: number): void;
  toHalf(src: number, n: number, out: number, bf16: number, stats: number): void;
  inverseFactor(h: number, n: number, damp: number, row: number): number;
  subScaledRows(w: number, n: number, first: number, count: number, coeffs: number, e: number): void;
  blockUpdate(w: number, n: number, from: number, to: number, u: number, k: number, b0: number, b1: number, err: number): void;
  symMul32(out: number, h: number, p: number, k: number, n: number, pack: number): void;
}

/**
 * Float64 arrays in the kernels' memory for a GPTQ or SparseGPT sweep over W [k, n] with its factor
 * U [k, k]: the caller fills and reads them as arrays, the kernels update W's rows in place. Valid
 * until the kernels' next use of their memory.
 */
export interface SweepSpace {
  k: number;
  n: number;
  u: Float64Array;
  w: Float64Array;
  /** Error rows (n each). */
  e: Float64Array;
  /** rows first … first + count − 1 of w, each minus u[coeffAt + j] times error row `eRow`. */
  subScaledRows(first: number, count: number, coeffAt: number, eRow: number): void;
  /** rows from … to − 1 of w, each minus Σ over rb in [b0, b1) of u[rb, row] times error row rb − b0. */
  blockUpdate(from: number, to: number, b0: number, b1: number): void;
}

/**
 * Float32 arrays in the kernels' memory for the refit's products (kernels/refit.ts): H [k, k] and P,
 * Q of up to [k, n]; `multiply(columns)` sets Q = H·P, P and Q taken as [k, columns] (n by default)
 * in their first k·columns values. Valid until the kernels' next use of their memory.
 */
export interface ProductSpace {
  h: Float32Array;
  p: Float32Array;
  q: Float32Array;
  multiply(columns?: number): void;
}

/**
 * How a scale is derived from a group's range (the kernel's `mode`). FullFirst: a search whose first
 * candidate is FullSymmetric's scale and whose clip ratios (1 included) shrink Symmetric's.
 * FullFirstRefit: FullFirst, then the chosen scale re-fitted by least squares for its codes, kept
 * where the codes rounded again with it have the smaller squared error.
 */
export const ScaleMode = { Symmetric: 0, FullSymmetric: 1, Asymmetric: 2, FullFirst: 3, FullFirstRefit: 4 } as const;
export type ScaleMode = (typeof ScaleMode)[keyof typeof ScaleMode];

/** Groups the kernels handle: contiguous groups in rows, or groups of rows in each column. */
export type SimdLayout =
  | { kind: 'rows'; rows: number; length: number; block: number }
  | { kind: 'cols'; rows: number; cols: number; block: number };

export interface SimdRequest {
  /** The values; from a file, they are read straight into the kernels' memory. */
  values: Float32Array | FloatSource;
  layout: SimdLayout;
  groups: number;
  mode: ScaleMode;
  qmin: number;
  qmax: number;
  /** The zero point of symmetric unsigned ranges. */
  zpSym: number;
  ratios: number[];
  /** Also pack the codes for MatMulNBits (a [K, N] weight in column groups blocked along K). */
  nbits?: NBitsPacking;
  /** Also pack the codes two to a byte (INT4/UINT4 raw data). */
  pairs?: boolean;
  /** Told the fraction of rows done after each slab. */
  progress?: JobProgress;
}

export interface NBitsPacking {
  K: number;
  N: number;
  block: number;
  /** Added to each code: 8 for signed codes, whose MatMulNBits zero point is 8. */
  shift: number;
}

export interface SimdResult {
  codes: Uint8Array;
  /** Empty with `nbits` (the packed scales are the same, transposed). */
  scales: Float32Array;
  /** With ScaleMode.Asymmetric; in the other modes every group's zero point is `zpSym`. */
  zeroPoints?: Float32Array;
  /** max abs error, Σ error², Σ value², zeros; then max abs, Σ error², Σ value² with plain scales. */
  stats: Float64Array;
  /**
   * With `nbits`: MatMulNBits' B and its scales as [N, blocks]; with `pairs`: the codes two to a
   * byte and the scales as they are. The codes are then left out (empty).
   */
  packed?: { data: Uint8Array; scales: Float32Array };
}

/** wasm32 addresses: a tensor with its codes must fit in 4 GiB, and the kernels' loops count in i32. */
const MAX_BYTES = 2 ** 32 - (1 << 16);
const BASE = 1024;
const align = (n: number) => Math.ceil(n / 16) * 16;

/**
 * Values read from a file go through the kernels this many bytes of rows at a time, into the same
 * memory each time, where the kernels then find them in the core's cache. Whole tensors went out to
 * RAM and were read back, and reading them took several times as long as copying the same bytes into
 * a small buffer (bench/RESULTS.md, §"Figures moved from source comments").
 */
const SLAB_BYTES = 256 << 10;

/**
 * Rows per kernel call when streaming (whole groups only: a multiple of the block for column
 * groups, of four rows for row groups, whose groups the kernels take four at a time), or undefined
 * where one call on the whole tensor is as good (a slab would hold it all, or a group is too large).
 */
export function slabRows(l: SimdLayout): number | undefined {
  if (l.kind === 'cols') {
    const unit = l.block * l.cols * 4;
    if (unit > 4 * SLAB_BYTES) return undefined;
    const rows = l.block * Math.max(1, Math.floor(SLAB_BYTES / unit));
    return rows < l.rows ? rows : undefined;
  }
  const unit = 4 * l.length * 4;
  if (unit > 4 * SLAB_BYTES) return undefined;
  const rows = 4 * Math.max(1, Math.floor(SLAB_BYTES / unit));
  return rows < l.rows ? rows : undefined;
}

/** A WebAssembly memory that cannot be had (under an address-space limit: V8 reserves several GB of guard pages per memory; 8 GB failed, 12 GB worked) is the machine's limit, not a bug. */
function outOfMemory(e: unknown, what: string): never {
  if (e instanceof RangeError)
    throw new ResourceError(
      `not enough memory for the kernels (${what}: ${e.message}); WebAssembly needs an address-space limit (ulimit -v) of about 12 GB or more`,
    );
  throw e;
}

class Kernels {
  readonly memory: WebAssembly.Memory;
  readonly exports: Exports;

  constructor(module: WebAssembly.Module) {
    try {
      this.memory = new WebAssembly.Memory({ initial: 2 });
    } catch (e) {
      outOfMemory(e, 'reserving');
    }
    this.exports = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports as unknown as Exports;
  }

  /** Makes the memory at least `bytes` long and returns it as bytes. */
  reserve(bytes: number): Uint8Array {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      try {
        this.memory.grow(Math.ceil((bytes - have) / 65536));
      } catch (e) {
        outOfMemory(e, `growing to ${bytes} bytes`);
      }
    }
    return new Uint8Array(this.memory.buffer);
  }

  quantize(r: SimdRequest): SimdResult {
    const n = r.values.length;
    const l = r.layout;
    const rows = l.rows,
      rowLength = l.kind === 'rows' ? l.length : l.cols;
    // Values from a file go through the kernels a slab of rows at a time, read into the same few
    // hundred kB: see SLAB_BYTES.
    const slab = r.values instanceof Float32Array ? undefined : slabRows(l);
    const src = BASE;
    const codes = align(src + (slab ?? rows) * rowLength * 4);
    const scales = align(codes + n);
    const zeros = align(scales + r.groups * 4);
    const ratios = align(zeros + r.groups * 4);
    const stats = align(ratios + r.ratios.length * 4);
    const scratch = stats + 64;
    // colSweep keeps three floats per column there; a column search or the ragged edge, a copy of
    // four columns' block and its codes; interleaved rows, four groups of values and their codes.
    const scratchEnd = align(
      scratch + (l.kind === 'cols' ? Math.max(12 * l.cols, 20 * Math.min(l.block, l.rows) + 32) : 20 * Math.min(l.block, 256)),
    );
    const mem = this.reserve(scratchEnd);
    new Float32Array(mem.buffer, ratios, r.ratios.length).set(r.ratios);
    new Float64Array(mem.buffer, stats, 8).fill(0);
    /** Runs the kernel on rows [row, row + count) laid out at `at`. */
    const run = (row: number, count: number, at = src) => {
      if (l.kind === 'rows') {
        const g = row * Math.ceil(l.length / l.block);
        this.exports.rowGroups(
          at,
          count,
          l.length,
          l.block,
          codes + row * l.length,
          scales + g * 4,
          zeros + g * 4,
          r.mode,
          r.qmin,
          r.qmax,
          r.zpSym,
          ratios,
          r.ratios.length,
          stats,
          scratch,
        );
      } else {
        const g = (row / l.block) * l.cols;
        this.exports.colGroups(
          at,
          count,
          l.cols,
          l.block,
          codes + row * l.cols,
          scales + g * 4,
          zeros + g * 4,
          r.mode,
          r.qmin,
          r.qmax,
          r.zpSym,
          ratios,
          r.ratios.length,
          stats,
          scratch,
        );
      }
    };
    if (slab === undefined) {
      if (r.values instanceof Float32Array) new Float32Array(mem.buffer, src, n).set(r.values);
      else readFloats(r.values, new Float32Array(mem.buffer, src, n));
      // Values in memory go through the kernels in the same slabs as values from a file: the same
      // error sums (summed per call) either way, and a slab at a time to report progress.
      const step = slabRows(l) ?? rows;
      for (let row = 0; row < rows; row += step) {
        const count = Math.min(step, rows - row);
        run(row, count, src + row * rowLength * 4);
        r.progress?.((row + count) / rows);
      }
    } else {
      // Only values from a file have slabs of their own.
      const source = r.values as FloatSource;
      const reader = new RangeReader(source.file);
      try {
        for (let row = 0; row < rows; row += slab) {
          const count = Math.min(slab, rows - row);
          reader.readInto(source.offset + row * rowLength * 4, new Uint8Array(this.memory.buffer, src, count * rowLength * 4));
          run(row, count);
          r.progress?.((row + count) / rows);
        }
      } finally {
        reader.close();
      }
    }
    const result: SimdResult = {
      // Each copied out is a fresh buffer, page faults and all: only what the caller will use.
      codes: r.nbits || r.pairs ? new Uint8Array(0) : mem.slice(codes, codes + n),
      scales: r.nbits ? new Float32Array(0) : new Float32Array(mem.buffer.slice(scales, scales + r.groups * 4)),
      zeroPoints: r.mode === ScaleMode.Asymmetric ? new Float32Array(mem.buffer.slice(zeros, zeros + r.groups * 4)) : undefined,
      stats: new Float64Array(mem.buffer.slice(stats, stats + 64)),
    };
    if (r.nbits) result.packed = this.packNBitsInPlace(codes, zeros, scales, scratchEnd, r.nbits);
    else if (r.pairs) {
      const size = Math.ceil(n / 2);
      const memory = this.reserve(scratchEnd + size);
      this.exports.packPairs(codes, n, scratchEnd);
      result.packed = { data: memory.slice(scratchEnd, scratchEnd + size), scales: result.scales };
    }
    return result;
  }

  /** Packs codes still in memory (with their zero points and scales), writing from `free` on. */
  private packNBitsInPlace(
    codes: number,
    zeros: number,
    scales: number,
    free: number,
    p: NBitsPacking,
  ): { data: Uint8Array; scales: Float32Array } {
    const kBlocks = Math.ceil(p.K / p.block);
    const size = p.N * kBlocks * (p.block / 2);
    const scalesAt = align(free + size);
    const mem = this.reserve(scalesAt + kBlocks * p.N * 4);
    this.exports.packMatMulNBits(codes, p.K, p.N, p.block, p.shift, zeros, free);
    this.exports.transpose32(scales, kBlocks, p.N, scalesAt);
    return { data: mem.slice(free, free + size), scales: new Float32Array(mem.buffer.slice(scalesAt, scalesAt + kBlocks * p.N * 4)) };
  }

  /**
   * A copy of the values with the `count` smallest magnitudes zeroed (ties broken by position), and
   * how many of its values are zero. Values still in the file are read straight into the kernels' memory.
   */
  pruneSmallest(values: Float32Array | FloatSource, count: number): { values: Float32Array; zeros: number; error: WeightError } {
    const n = values.length;
    const hist = align(BASE + n * 4);
    const figures = hist + 4 * 2048;
    const mem = this.reserve(figures + 24);
    const into = new Float32Array(mem.buffer, BASE, n);
    if (values instanceof Float32Array) into.set(values);
    else readFloats(values, into);
    // With nothing to prune, a threshold of 0 zeroes nothing and counts the zeros there are.
    let threshold = 0,
      ties = 0;
    if (count > 0) {
      const selected = this.selectMagnitude(n, Math.min(count, n) - 1, hist);
      threshold = selected.threshold;
      ties = Math.min(count, n) - selected.below;
    }
    // The error figures first, while the values are whole: the caller need not read them again.
    this.exports.pruneError(BASE, n, threshold, ties, figures);
    const [refSq, errSq, maxAbs] = new Float64Array(mem.buffer, figures, 3);
    const zeros = this.exports.pruneBelow(BASE, n, threshold, ties);
    const error = weightErrorOf(maxAbs!, errSq!, refSq!);
    return { values: new Float32Array(mem.buffer.slice(BASE, BASE + n * 4)), zeros, error };
  }

  /**
   * N:M selection along the middle axis of values shaped [outer, length, inner] (length a multiple
   * of m): a pruned copy, its zeros, and the error against the values. See nmRows.
   */
  pruneNM(
    values: Float32Array | FloatSource,
    outer: number,
    length: number,
    inner: number,
    n: number,
    m: number,
  ): { values: Float32Array; zeros: number; error: WeightError } {
    const count = values.length;
    const scratch = align(BASE + count * 4);
    const figures = align(scratch + 16 * m);
    const mem = this.reserve(figures + 32);
    const into = new Float32Array(mem.buffer, BASE, count);
    if (values instanceof Float32Array) into.set(values);
    else readFloats(values, into);
    new Float64Array(mem.buffer, figures, 4).fill(0);
    const slab = length * inner * 4;
    for (let o = 0; o < outer; o++) this.exports.nmRows(BASE + o * slab, length, inner, n, m, scratch, figures);
    const [refSq, errSq, maxAbs, zeros] = new Float64Array(mem.buffer, figures, 4);
    const error = weightErrorOf(maxAbs!, errSq!, refSq!);
    return { values: new Float32Array(mem.buffer.slice(BASE, BASE + count * 4)), zeros: zeros!, error };
  }

  /** The k-th smallest magnitude (0-based) of all the arrays together. */
  kthMagnitude(arrays: Float32Array[], k: number): number {
    const n = arrays.reduce((total, a) => total + a.length, 0);
    const hist = align(BASE + n * 4);
    const mem = this.reserve(hist + 4 * 2048);
    let at = BASE;
    for (const a of arrays) {
      new Float32Array(mem.buffer, at, a.length).set(a);
      at += a.length * 4;
    }
    const { threshold } = this.selectMagnitude(n, k, hist);
    return new Float32Array(Uint32Array.of(threshold).buffer)[0]!;
  }

  /**
   * Radix selection over the n values at BASE: the |x| bits of the k-th smallest magnitude, and how
   * many magnitudes are smaller. Digits of 11, 11 and 9 bits from the top of the 31 magnitude bits.
   */
  private selectMagnitude(n: number, k: number, hist: number): { threshold: number; below: number } {
    let prefix = 0,
      prefixMask = 0,
      below = 0;
    for (const [shift, bits] of [
      [20, 11],
      [9, 11],
      [0, 9],
    ] as const) {
      const digitMask = (1 << bits) - 1;
      const counts = new Uint32Array(this.memory.buffer, hist, 1 << bits);
      counts.fill(0);
      this.exports.magnitudeHistogram(BASE, n, shift, digitMask, prefixMask, prefix, hist);
      let digit = 0;
      for (; digit < digitMask && k >= counts[digit]!; digit++) {
        k -= counts[digit]!;
        below += counts[digit]!;
      }
      prefix = (prefix | (digit << shift)) >>> 0;
      prefixMask = (prefixMask | (digitMask << shift)) >>> 0;
    }
    return { threshold: prefix, below };
  }

  /**
   * The values sorted ascending (−0 before +0, as TypedArray sort orders them), in a new array. The
   * radix sort's six passes (keys, four digits, back to floats) run a chunk of values at a time, the
   * fraction done told to `progress` after each.
   */
  sorted(values: Float32Array, progress?: JobProgress): Float32Array {
    const n = values.length;
    const tmp = align(BASE + n * 4),
      hist = align(tmp + n * 4);
    const mem = this.reserve(hist + 4 * 4 * 256);
    new Float32Array(mem.buffer, BASE, n).set(values);
    new Uint32Array(mem.buffer, hist, 4 * 256).fill(0);
    const e = this.exports;
    const chunked = (phase: number, step: (lo: number, hi: number) => void) => {
      const done = part(progress, phase / 6, (phase + 1) / 6);
      for (let lo = 0; lo < n; lo += PROGRESS_CHUNK) {
        const hi = Math.min(n, lo + PROGRESS_CHUNK);
        step(lo, hi);
        done?.(hi / n);
      }
    };
    chunked(0, (lo, hi) => e.sortKeys(BASE, lo, hi, hist));
    let from = BASE,
      to = tmp;
    for (let b = 0; b < 4; b++) {
      if (!e.sortOffsets(from, n, hist, b)) continue;
      const [f, t] = [from, to];
      chunked(1 + b, (lo, hi) => e.sortScatter(f, t, lo, hi, hist, b));
      [from, to] = [to, from];
    }
    chunked(5, (lo, hi) => e.sortUnkeys(from, BASE, lo, hi));
    return new Float32Array(mem.buffer.slice(BASE, BASE + n * 4));
  }

  /** For each value, how many of the ascending `bounds` (at most 255) are ≤ it. */
  countBoundsBelow(values: Float32Array, bounds: Float64Array): Uint8Array {
    const n = values.length;
    const at = align(BASE + n * 4),
      codes = align(at + bounds.length * 8);
    const mem = this.reserve(codes + n);
    new Float32Array(mem.buffer, BASE, n).set(values);
    new Float64Array(mem.buffer, at, bounds.length).set(bounds);
    this.exports.countBoundsBelow(BASE, n, at, bounds.length, codes);
    return mem.slice(codes, codes + n);
  }

  /** Codes made elsewhere (GPTQ, the scalar path), two to a byte. */
  packPairs(codes: Int8Array | Uint8Array): Uint8Array {
    const n = codes.length;
    const out = align(BASE + n);
    const mem = this.reserve(out + Math.ceil(n / 2));
    mem.set(new Uint8Array(codes.buffer, codes.byteOffset, n), BASE);
    this.exports.packPairs(BASE, n, out);
    return mem.slice(out, out + Math.ceil(n / 2));
  }

  /** Codes made elsewhere (GPTQ, the scalar path) as MatMulNBits' B. */
  packMatMulNBits(
    codes: Int8Array | Uint8Array,
    zeroPoints: ArrayLike<number>,
    K: number,
    N: number,
    block: number,
    shift: number,
  ): Uint8Array {
    const kBlocks = Math.ceil(K / block);
    const zeros = align(BASE + codes.length);
    const out = align(zeros + kBlocks * N * 4);
    const size = N * kBlocks * (block / 2);
    const mem = this.reserve(out + size);
    mem.set(new Uint8Array(codes.buffer, codes.byteOffset, codes.length), BASE);
    new Float32Array(mem.buffer, zeros, kBlocks * N).set(zeroPoints);
    this.exports.packMatMulNBits(BASE, K, N, block, shift, zeros, out);
    return mem.slice(out, out + size);
  }

  /** Space for a sweep over W [k, n] with `eRows` error rows (see SweepSpace). */
  sweepSpace(k: number, n: number, eRows: number): SweepSpace {
    const u = align(BASE);
    const w = align(u + k * k * 8);
    const e = align(w + k * n * 8);
    const mem = this.reserve(e + eRows * n * 8);
    const x = this.exports;
    return {
      k,
      n,
      u: new Float64Array(mem.buffer, u, k * k),
      w: new Float64Array(mem.buffer, w, k * n),
      e: new Float64Array(mem.buffer, e, eRows * n),
      subScaledRows: (first, count, coeffAt, eRow) => x.subScaledRows(w, n, first, count, u + coeffAt * 8, e + eRow * n * 8),
      blockUpdate: (from, to, b0, b1) => x.blockUpdate(w, n, from, to, u, k, b0, b1, e),
    };
  }

  /** Space for products H·P with H [k, k] and P [k, n] (see ProductSpace). */
  productSpace(k: number, n: number): ProductSpace {
    const h = align(BASE);
    const p = align(h + k * k * 4);
    const q = align(p + k * n * 4);
    const pack = align(q + k * n * 4);
    const mem = this.reserve(pack + k * 128);
    const x = this.exports;
    return {
      h: new Float32Array(mem.buffer, h, k * k),
      p: new Float32Array(mem.buffer, p, k * n),
      q: new Float32Array(mem.buffer, q, k * n),
      multiply: (columns = n) => x.symMul32(q, h, p, k, Math.min(columns, n), pack),
    };
  }

  /**
   * The damped inverse Hessian's upper factor, in place in `h` (n×n float64): assembly/cholesky.ts.
   * Returns false when H is not positive definite after damping (h is then left undefined).
   */
  inverseFactor(h: Float64Array, n: number, damp: number): boolean {
    const matrix = align(BASE);
    const row = align(matrix + n * n * 8);
    const mem = this.reserve(row + n * 8);
    new Float64Array(mem.buffer, matrix, n * n).set(h);
    const ok = this.exports.inverseFactor(matrix, n, damp, row) === 1;
    if (ok) h.set(new Float64Array(mem.buffer, matrix, n * n));
    return ok;
  }

  /**
   * float32 values to float16 (or bfloat16) bits, the same bits as ir/half.ts's toHalf, with its error
   * figures; a slab at a time through the same small memory (SLAB_BYTES).
   */
  toHalf(values: Float32Array | FloatSource, bfloat16: boolean): HalfConversion {
    const bits = new Uint16Array(values.length);
    let at = 0;
    const figures = this.toHalfPieces(values, bfloat16, (piece) => {
      new Uint8Array(bits.buffer, at * 2, piece.length).set(piece);
      at += piece.length / 2;
    });
    return { bits, ...figures };
  }

  /**
   * The same conversion handed to `write` a slab at a time, as views of the kernels' memory that
   * `write` must consume before it returns (the writer's fill puts them straight into a file).
   */
  toHalfPieces(values: Float32Array | FloatSource, bfloat16: boolean, write: (piece: Uint8Array) => void): HalfFigures {
    const n = values.length;
    const slab = SLAB_BYTES / 4;
    const out = align(BASE + Math.min(n, slab) * 4);
    const stats = align(out + Math.min(n, slab) * 2);
    const mem = this.reserve(stats + 32);
    const figures = new Float64Array(mem.buffer, stats, 4);
    figures.fill(0);
    // Values still in a file are read straight into the kernels' memory, a slab at a time.
    const reader = values instanceof Float32Array ? undefined : new RangeReader(values.file);
    try {
      for (let at = 0; at < n; at += slab) {
        const count = Math.min(slab, n - at);
        if (values instanceof Float32Array) new Float32Array(mem.buffer, BASE, count).set(values.subarray(at, at + count));
        else reader!.readInto(values.offset + at * 4, new Uint8Array(mem.buffer, BASE, count * 4));
        this.exports.toHalf(BASE, count, out, bfloat16 ? 1 : 0, stats);
        write(new Uint8Array(mem.buffer, out, count * 2));
      }
    } finally {
      reader?.close();
    }
    return { maxAbsError: figures[0]!, errorSquares: figures[1]!, squares: figures[2]!, largest: figures[3]! };
  }
}

let kernels: Kernels | undefined;

function wasmPath(): string | undefined {
  // Built by npm run build:wasm (tests running the TypeScript sources use it too).
  const p = packagePath('dist', 'kernels', 'kernels.wasm');
  return existsSync(p) ? p : undefined;
}

/** The kernels of this thread, loaded on first use. */
export function simdKernels(): Kernels {
  if (!kernels) {
    const path = wasmPath();
    if (!path) throw new Error('kernels.wasm is missing beside the compiled code: run npm run build');
    kernels = new Kernels(new WebAssembly.Module(readFileSync(path)));
  }
  return kernels;
}

/** Whether a tensor of n values fits the kernels' memory. */
export function simdFits(n: number): boolean {
  return n > 0 && BASE + n * 6 + (1 << 20) < MAX_BYTES;
}
