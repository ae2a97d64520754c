// Quantization arithmetic. Values are grouped (per tensor, per channel along an axis, or in blocks
// along an axis); each group gets a scale (and zero point), and the figures of the error the
// rounding introduced are measured on the spot, as ONNX Runtime will dequantize: (q − zp) · scale in float32.
// Groups laid out in rows or columns go to the WebAssembly SIMD kernels (simd.ts); the scalar code
// here handles the other layouts (a channel axis in the middle of a tensor) and GPTQ's arithmetic.
import { toFloat32, type FloatSource } from '../ir/tensor.js';
import { weightErrorOf } from './weight-error.js';
import { hqqParams } from './hqq.js';
import { ScaleMode, simdFits, simdKernels, type NBitsPacking, type SimdLayout } from './simd.js';
import type { JobProgress } from './progress.js';
import type { JobKind } from './job.js';

/** Adding and subtracting 1.5·2^52 rounds a double to the nearest integer, ties to even, without a branch (~3× faster than Math.round in V8). */
const ROUND = 6755399441055744;

export interface ErrorStats {
  maxAbsError: number;
  relRmsError: number;
  /** Fraction of zeros among the dequantized values. */
  sparsity: number;
}

/** Running error figures over many groups. */
export class ErrorAccumulator {
  maxAbs = 0;
  errSq = 0;
  refSq = 0;
  zeros = 0;
  count = 0;
  result(): ErrorStats {
    return { ...weightErrorOf(this.maxAbs, this.errSq, this.refSq), sparsity: this.count ? this.zeros / this.count : 0 };
  }
}

/**
 * A partition of a row-major tensor into groups that share a scale: the whole tensor, one channel
 * along an axis, or blocks of consecutive positions along an axis. `gather` copies a group's values
 * into a contiguous scratch buffer (and their positions into `idx`), so the arithmetic runs over
 * plain arrays in tight loops.
 */
export interface Groups {
  count: number;
  /** The largest number of elements in one group (the scratch size). */
  maxSize: number;
  gather(g: number, values: Float32Array, out: Float32Array, idx: Int32Array): number;
  /** The layout in terms the SIMD kernels take, when they can take it. */
  layout?: SimdLayout;
}

export function perTensor(n: number): Groups {
  return {
    count: 1,
    maxSize: n,
    layout: { kind: 'rows', rows: 1, length: n, block: n },
    gather(_g, values, out, idx) {
      for (let i = 0; i < n; i++) {
        out[i] = values[i]!;
        idx[i] = i;
      }
      return n;
    },
  };
}

/** One group per index along `axis` of `dims`. */
export function perChannel(dims: number[], axis: number): Groups {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return {
    count: channels,
    maxSize: outer * inner,
    layout:
      outer === 1
        ? { kind: 'rows', rows: channels, length: inner, block: inner }
        : inner === 1
          ? { kind: 'cols', rows: outer, cols: channels, block: outer }
          : undefined,
    gather(c, values, out, idx) {
      let n = 0;
      for (let o = 0; o < outer; o++) {
        const base = (o * channels + c) * inner;
        for (let i = 0; i < inner; i++) {
          out[n] = values[base + i]!;
          idx[n++] = base + i;
        }
      }
      return n;
    },
  };
}

/** Codes of every range here fit a byte: signed ranges in Int8Array, unsigned in Uint8Array (stored as they are). */
export function codesFor(range: IntRange, n: number): Int8Array | Uint8Array {
  return range.min < 0 ? new Int8Array(n) : new Uint8Array(n);
}

export interface IntRange {
  min: number;
  max: number;
  /**
   * Symmetric scales that use the most negative code too: the group's extreme value (whichever sign)
   * maps to `min`, so a scale may be negative. ONNX Runtime's own 4-bit quantizer does this: it is
   * round-to-nearest's scale. Under a clipping search it is the first candidate, and the clip ratios
   * shrink max|x|/max (both kinds are needed: bench/RESULTS.md, "A 4-bit search never worse than
   * round-to-nearest"), so no group ends worse than round-to-nearest on the search's measure.
   */
  fullSymmetric?: boolean;
}

export const INT8: IntRange = { min: -128, max: 127 };
export const UINT8: IntRange = { min: 0, max: 255 };
export const INT4: IntRange = { min: -8, max: 7 };
/** 4-bit with the extreme on code −8 (see fullSymmetric): round-to-nearest, and the first candidate of the search. */
export const INT4_FULL: IntRange = { min: -8, max: 7, fullSymmetric: true };
export const UINT4: IntRange = { min: 0, max: 15 };

export interface GroupParams {
  scale: number;
  zeroPoint: number;
}

/**
 * Scale and zero point for a group with the given range. Symmetric: zero point 0 and ±max|x| maps to
 * ±(range.max) (for 8 bits the most negative code is unused, as ONNX Runtime's symmetric int8 kernels
 * expect; 4-bit ranges use it, see IntRange.fullSymmetric); an unsigned range puts its middle code at 0.
 * Asymmetric: the range always includes 0, so 0.0 is exactly representable (pruned zeros stay zero).
 */
export function groupParams(min: number, max: number, range: IntRange, symmetric: boolean): GroupParams {
  if (symmetric && range.fullSymmetric) {
    const extreme = Math.abs(min) >= Math.abs(max) ? min : max;
    const scale = Math.fround(extreme / range.min);
    return { scale: scale !== 0 ? scale : 1, zeroPoint: 0 };
  }
  if (symmetric) {
    const absMax = Math.max(Math.abs(min), Math.abs(max));
    // Signed codes: ±max around 0. Unsigned codes: [−absMax, absMax] over the whole code range around
    // the middle code (uint8: scale 2·absMax/255, zero point 128, as ONNX Runtime's compute_scale_zp).
    const scale = Math.fround(range.min < 0 ? absMax / range.max : (2 * absMax) / (range.max - range.min));
    const zero = range.min < 0 ? 0 : Math.round((range.min + range.max + 1) / 2);
    return { scale: scale > 0 ? scale : 1, zeroPoint: zero };
  }
  const lo = Math.min(0, min),
    hi = Math.max(0, max);
  const scale = Math.fround((hi - lo) / (range.max - range.min));
  if (!(scale > 0)) return { scale: 1, zeroPoint: range.min < 0 ? 0 : range.min };
  let zp = range.min - lo / scale;
  zp = zp + ROUND - ROUND;
  return { scale, zeroPoint: Math.min(range.max, Math.max(range.min, zp)) };
}

/**
 * Sum of squared error of values[0..n) quantized with scale/zero point (for the scale search). It
 * stops once the sum reaches `bound`: such a candidate cannot win, and the search only asks which is
 * smallest.
 */
function groupError(values: Float32Array, n: number, scale: number, zeroPoint: number, min: number, max: number, bound = Infinity): number {
  let err = 0;
  const inv = 1 / scale;
  for (let k = 0; k < n; k++) {
    const x = values[k]!;
    let q = x * inv + ROUND - ROUND + zeroPoint;
    q = q < min ? min : q > max ? max : q;
    const d = Math.fround((q - zeroPoint) * scale) - x;
    err += d * d;
    if (err >= bound) return err;
  }
  return err;
}

/**
 * The least-squares scale Σx·q / Σq² (float32) for the codes of values[0..n) with `scale` and zero
 * point 0, or `scale` where every code is 0 or the fit is not a usable scale.
 */
function refittedScale(values: Float32Array, n: number, scale: number, min: number, max: number): number {
  let xq = 0,
    qq = 0;
  const inv = 1 / scale;
  for (let k = 0; k < n; k++) {
    const x = values[k]!;
    let q = x * inv + ROUND - ROUND;
    q = q < min ? min : q > max ? max : q;
    xq += x * q;
    qq += q * q;
  }
  const fitted = Math.fround(xq / qq);
  return qq > 0 && fitted !== 0 && Number.isFinite(fitted) ? fitted : scale;
}

/** Σ |error| of values[0..n) quantized with `p`. */
function groupAbsError(values: Float32Array, n: number, p: GroupParams, min: number, max: number): number {
  let err = 0;
  const inv = 1 / p.scale;
  for (let k = 0; k < n; k++) {
    const x = values[k]!;
    let q = x * inv + ROUND - ROUND + p.zeroPoint;
    q = q < min ? min : q > max ? max : q;
    err += Math.abs(Math.fround((q - p.zeroPoint) * p.scale) - x);
  }
  return err;
}

export interface QuantizeOptions {
  range: IntRange;
  symmetric: boolean;
  /**
   * Clipping search: try shrinking each group's range by these factors and keep the one with the
   * smallest squared error. [1] is plain min/max.
   */
  clipRatios?: number[];
  /**
   * With a search on a full symmetric range (4-bit): each group's chosen scale is then re-fitted by
   * least squares for its codes (Σx·q / Σq²) and the codes rounded again with it, kept where that
   * lowers the squared error, so never worse than the search.
   */
  refit?: boolean;
  /**
   * Half-quadratic quantization (kernels/hqq.ts) per group, kept where its mean |error| (HQQ's
   * measure) is below round-to-nearest's. Scalar code.
   */
  hqq?: boolean;
  /** Pack the codes for MatMulNBits on the way out, where the kernels ran (see QuantizeResult.packed). */
  nbits?: NBitsPacking;
  /** Pack the codes two to a byte on the way out (see QuantizeResult.packed). */
  pairs?: boolean;
}

export interface QuantizeResult {
  /** Codes, one per element, in the tensor's order. */
  codes: Int8Array | Uint8Array;
  scales: Float32Array;
  zeroPoints: Int16Array;
  error: ErrorStats;
  /** The error with plain min/max scales, when a search ran. */
  errorBeforeSearch?: ErrorStats;
  /**
   * When `nbits` or `pairs` was asked for and the kernels could do it: MatMulNBits' B and its scales,
   * or the codes two to a byte and the scales; `codes` is then empty, and with `nbits` `scales` too.
   */
  packed?: { data: Uint8Array; scales: Float32Array };
}

/** Quantizes `values` group by group, telling `progress` the fraction done as it goes. */
export function quantizeGroups(
  source: Float32Array | FloatSource,
  groups: Groups,
  options: QuantizeOptions,
  progress?: JobProgress,
): QuantizeResult {
  const layout = groups.layout;
  if (layout && simdFits(source.length) && !options.hqq) return quantizeSimd(source, groups.count, layout, options, progress);
  const values = toFloat32(source);
  const { range, symmetric } = options;
  const ratios = options.clipRatios ?? [1];
  const clipRange = range.fullSymmetric ? { ...range, fullSymmetric: false } : range;
  const lo = range.min,
    hi = range.max;
  const codes = codesFor(range, values.length);
  const scales = new Float32Array(groups.count);
  const zeroPoints = new Int16Array(groups.count);
  const acc = new ErrorAccumulator();
  const searching = ratios.length > 1 || options.hqq === true;
  const plain = searching ? new ErrorAccumulator() : undefined;
  const buf = new Float32Array(groups.maxSize);
  const idx = new Int32Array(groups.maxSize);
  for (let g = 0; g < groups.count; g++) {
    const n = groups.gather(g, values, buf, idx);
    let min = 0,
      max = 0;
    if (n > 0) {
      min = Infinity;
      max = -Infinity;
      for (let k = 0; k < n; k++) {
        const x = buf[k]!;
        if (x < min) min = x;
        if (x > max) max = x;
      }
    }
    let best = groupParams(min, max, range, symmetric);
    if (searching) {
      const first = best;
      let bestErr = groupError(buf, n, best.scale, best.zeroPoint, lo, hi);
      if (plain) {
        plain.errSq += bestErr;
        const inv = 1 / first.scale;
        for (let k = 0; k < n; k++) {
          const x = buf[k]!;
          let q = x * inv + ROUND - ROUND + first.zeroPoint;
          q = q < lo ? lo : q > hi ? hi : q;
          const d = Math.abs(Math.fround((q - first.zeroPoint) * first.scale) - x);
          if (d > plain.maxAbs) plain.maxAbs = d;
          plain.refSq += x * x;
        }
        plain.count += n;
      }
      for (const r of ratios) {
        if (r === 1 && !range.fullSymmetric) continue;
        const p = groupParams(min * r, max * r, clipRange, symmetric);
        const e = groupError(buf, n, p.scale, p.zeroPoint, lo, hi, bestErr);
        if (e < bestErr) {
          bestErr = e;
          best = p;
        }
      }
      if (options.refit && range.fullSymmetric && symmetric) {
        const fitted = refittedScale(buf, n, best.scale, lo, hi);
        if (fitted !== best.scale && groupError(buf, n, fitted, 0, lo, hi, bestErr) < bestErr) best = { scale: fitted, zeroPoint: 0 };
      }
      // HQQ's own measure is the mean |error| (the reference stops on it): kept where it beats
      // round-to-nearest's there, once the zero point is rounded to a code.
      if (options.hqq) {
        const h = hqqParams(buf, n, min, max, range, symmetric);
        if (groupAbsError(buf, n, h, lo, hi) < groupAbsError(buf, n, best, lo, hi)) best = h;
      }
    }
    const scale = best.scale,
      zp = best.zeroPoint,
      inv = 1 / scale;
    scales[g] = scale;
    zeroPoints[g] = zp;
    let maxAbs = acc.maxAbs,
      errSq = 0,
      refSq = 0,
      zeros = 0;
    for (let k = 0; k < n; k++) {
      const x = buf[k]!;
      let q = x * inv + ROUND - ROUND + zp;
      q = q < lo ? lo : q > hi ? hi : q;
      codes[idx[k]!] = q;
      const y = Math.fround((q - zp) * scale);
      const d = Math.abs(y - x);
      if (d > maxAbs) maxAbs = d;
      errSq += d * d;
      refSq += x * x;
      if (y === 0) zeros++;
    }
    acc.maxAbs = maxAbs;
    acc.errSq += errSq;
    acc.refSq += refSq;
    acc.zeros += zeros;
    acc.count += n;
    if (progress && (g & 4095) === 4095) progress((g + 1) / groups.count);
  }
  return { codes, scales, zeroPoints, error: acc.result(), errorBeforeSearch: plain?.result() };
}

/** Clip ratios for the scale search: 1, 0.98, ..., down to `lowest`. */
export function clipRatios(steps: number, lowest = 0.5): number[] {
  const out: number[] = [];
  for (let i = 0; i <= steps; i++) out.push(1 - ((1 - lowest) * i) / steps);
  return out;
}

/**
 * Blocks of `block` consecutive elements along `axis` (the last block may be shorter): one group per
 * (outer index, block, inner index), numbered in the row-major order of the scale tensor, whose shape
 * is `dims` with the axis divided into blocks.
 */
export function perBlock(dims: number[], axis: number, block: number): Groups & { blocks: number } {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const length = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const blocks = Math.ceil(length / block);
  return {
    count: outer * blocks * inner,
    maxSize: block,
    blocks,
    layout:
      inner === 1
        ? { kind: 'rows', rows: outer, length, block }
        : outer === 1
          ? { kind: 'cols', rows: length, cols: inner, block }
          : undefined,
    gather(g, values, out, idx) {
      const i = g % inner;
      const rest = (g - i) / inner;
      const b = rest % blocks;
      const o = (rest - b) / blocks;
      const end = Math.min(length, (b + 1) * block);
      let n = 0;
      for (let k = b * block; k < end; k++) {
        const at = (o * length + k) * inner + i;
        out[n] = values[at]!;
        idx[n++] = at;
      }
      return n;
    },
  };
}

/** Packs 4-bit codes two to a byte, the first in the low nibble (ONNX INT4/UINT4 raw_data). */
export function packNibbles(codes: ArrayLike<number>): Uint8Array {
  if (codes.length > 4096 && (codes instanceof Int8Array || codes instanceof Uint8Array)) return simdKernels().packPairs(codes);
  const out = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < codes.length; i += 2) {
    const lo = codes[i]! & 0x0f;
    const hi = i + 1 < codes.length ? codes[i + 1]! & 0x0f : 0;
    out[i >> 1] = lo | (hi << 4);
  }
  return out;
}

/** Typed-array set converts in native code (Int16Array.from calls back per element). */
function int16(values: Float32Array): Int16Array {
  const out = new Int16Array(values.length);
  out.set(values);
  return out;
}

/** quantizeGroups on the SIMD kernels (same scales and zero points rule, computed in float32). */
function quantizeSimd(
  values: Float32Array | FloatSource,
  count: number,
  layout: SimdLayout,
  options: QuantizeOptions,
  progress?: JobProgress,
): QuantizeResult {
  const { range, symmetric } = options;
  const ratios = options.clipRatios ?? [1];
  const search = ratios.length > 1;
  const zpSym = range.min < 0 ? 0 : Math.round((range.min + range.max + 1) / 2);
  const r = simdKernels().quantize({
    values,
    layout,
    groups: count,
    mode: !symmetric
      ? ScaleMode.Asymmetric
      : range.fullSymmetric
        ? search
          ? options.refit
            ? ScaleMode.FullFirstRefit
            : ScaleMode.FullFirst
          : ScaleMode.FullSymmetric
        : ScaleMode.Symmetric,
    qmin: range.min,
    qmax: range.max,
    zpSym,
    // The plain min/max scales are always the first candidate (FullFirst's ratio 1 is another scale).
    ratios: search ? (range.fullSymmetric ? ratios : ratios.filter((x) => x !== 1)) : [],
    nbits: layout.kind === 'cols' ? options.nbits : undefined,
    pairs: options.pairs,
    progress,
  });
  const s = r.stats;
  const stats = (maxAbs: number, errSq: number, refSq: number, zeros: number): ErrorStats =>
    Object.assign(new ErrorAccumulator(), { maxAbs, errSq, refSq, zeros, count: values.length }).result();
  return {
    codes: range.min < 0 ? new Int8Array(r.codes.buffer, r.codes.byteOffset, r.codes.length) : r.codes,
    scales: r.scales,
    zeroPoints: r.zeroPoints ? int16(r.zeroPoints) : new Int16Array(count).fill(zpSym),
    error: stats(s[0]!, s[1]!, s[2]!, s[3]!),
    errorBeforeSearch: ratios.length > 1 ? stats(s[4]!, s[5]!, s[6]!, 0) : undefined,
    packed: r.packed,
  };
}

/** How a job's values are grouped, as plain data (a job crosses to a worker thread). */
export type GroupsSpec =
  | { kind: 'tensor' }
  | { kind: 'channel'; dims: number[]; axis: number }
  | { kind: 'block'; dims: number[]; axis: number; block: number };

export function groupsFrom(spec: GroupsSpec, n: number): Groups {
  switch (spec.kind) {
    case 'tensor':
      return perTensor(n);
    case 'channel':
      return perChannel(spec.dims, spec.axis);
    case 'block':
      return perBlock(spec.dims, spec.axis, spec.block);
  }
}

/** Quantizing a tensor's values; the one kind of job that need not name itself. */
export interface QuantizeJob {
  kind?: 'quantize';
  values: Float32Array | FloatSource;
  groups: GroupsSpec;
  options: QuantizeOptions;
}

export const QUANTIZE_JOB: JobKind<QuantizeJob, QuantizeResult> = {
  input: 'values',
  execute: (job, progress) => quantizeGroups(job.values, groupsFrom(job.groups, job.values.length), job.options, progress),
};
