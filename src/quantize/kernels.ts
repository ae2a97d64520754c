// Quantization arithmetic. Values are grouped (per tensor, per channel along an axis, or in blocks
// along an axis); each group gets a scale (and zero point), and the figures of the error the
// rounding introduced are measured on the spot, as ONNX Runtime will dequantize: (q − zp) · scale in float32.

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
    return {
      maxAbsError: this.maxAbs,
      relRmsError: this.refSq === 0 ? (this.errSq === 0 ? 0 : Infinity) : Math.sqrt(this.errSq / this.refSq),
      sparsity: this.count ? this.zeros / this.count : 0,
    };
  }
}

/**
 * A layout of groups over a row-major tensor: `outer` × `channels` × `inner`, where a group is one
 * channel (all outer and inner positions), or one block of `block` consecutive positions along the
 * channel axis for every other index.
 */
export interface Groups {
  /** Number of groups. */
  count: number;
  /** Calls `visit(index)` for each element index of group g, in order. */
  forEach(g: number, visit: (index: number) => void): void;
}

export function perTensor(n: number): Groups {
  return { count: 1, forEach: (_g, visit) => { for (let i = 0; i < n; i++) visit(i); } };
}

/** One group per index along `axis` of `dims`. */
export function perChannel(dims: number[], axis: number): Groups {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return {
    count: channels,
    forEach: (c, visit) => {
      for (let o = 0; o < outer; o++) {
        const base = (o * channels + c) * inner;
        for (let i = 0; i < inner; i++) visit(base + i);
      }
    },
  };
}

export interface IntRange {
  min: number;
  max: number;
}

export const INT8: IntRange = { min: -128, max: 127 };
export const UINT8: IntRange = { min: 0, max: 255 };
export const INT4: IntRange = { min: -8, max: 7 };
export const UINT4: IntRange = { min: 0, max: 15 };

export interface GroupParams {
  scale: number;
  zeroPoint: number;
}

/**
 * Scale and zero point for a group with the given range. Symmetric: zero point 0 and ±max|x| maps to
 * ±(range.max) (the most negative code is unused, as ONNX Runtime's symmetric kernels expect).
 * Asymmetric: the range always includes 0, so 0.0 is exactly representable (pruned zeros stay zero).
 */
export function groupParams(min: number, max: number, range: IntRange, symmetric: boolean): GroupParams {
  if (symmetric) {
    const absMax = Math.max(Math.abs(min), Math.abs(max));
    const scale = Math.fround(absMax / range.max);
    const zero = range.min < 0 ? 0 : Math.round((range.min + range.max + 1) / 2);
    return { scale: scale > 0 ? scale : 1, zeroPoint: zero };
  }
  const lo = Math.min(0, min), hi = Math.max(0, max);
  const scale = Math.fround((hi - lo) / (range.max - range.min));
  if (!(scale > 0)) return { scale: 1, zeroPoint: range.min < 0 ? 0 : range.min };
  let zp = range.min - lo / scale;
  zp = zp + ROUND - ROUND;
  return { scale, zeroPoint: Math.min(range.max, Math.max(range.min, zp)) };
}

/** Quantizes one value to its code. */
export function quantizeValue(x: number, p: GroupParams, range: IntRange): number {
  let q = x / p.scale + ROUND - ROUND + p.zeroPoint;
  if (q < range.min) q = range.min;
  else if (q > range.max) q = range.max;
  return q;
}

/** Sum of squared error of a group quantized with `p` (for scale search). */
function groupError(values: Float32Array, indices: Int32Array, n: number, p: GroupParams, range: IntRange): number {
  let err = 0;
  for (let k = 0; k < n; k++) {
    const x = values[indices[k]!]!;
    const d = Math.fround((quantizeValue(x, p, range) - p.zeroPoint) * p.scale) - x;
    err += d * d;
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
}

export interface QuantizeResult {
  /** Codes, one per element, in the tensor's order. */
  codes: Int16Array;
  scales: Float32Array;
  zeroPoints: Int16Array;
  error: ErrorStats;
  /** The error with plain min/max scales, when a search ran. */
  errorBeforeSearch?: ErrorStats;
}

/** Quantizes `values` group by group. */
export function quantizeGroups(values: Float32Array, groups: Groups, options: QuantizeOptions): QuantizeResult {
  const { range, symmetric } = options;
  const ratios = options.clipRatios ?? [1];
  const codes = new Int16Array(values.length);
  const scales = new Float32Array(groups.count);
  const zeroPoints = new Int16Array(groups.count);
  const acc = new ErrorAccumulator();
  const plain = ratios.length > 1 ? new ErrorAccumulator() : undefined;
  let indices = new Int32Array(0);
  for (let g = 0; g < groups.count; g++) {
    let n = 0, min = Infinity, max = -Infinity;
    if (ratios.length > 1) {
      // Gather the group's indices once: the search visits them many times.
      groups.forEach(g, () => { n++; });
      if (indices.length < n) indices = new Int32Array(n);
      n = 0;
      groups.forEach(g, (i) => { indices[n++] = i; const x = values[i]!; if (x < min) min = x; if (x > max) max = x; });
    } else {
      groups.forEach(g, (i) => { n++; const x = values[i]!; if (x < min) min = x; if (x > max) max = x; });
    }
    if (n === 0) { min = 0; max = 0; }
    let best = groupParams(min, max, range, symmetric);
    if (ratios.length > 1) {
      let bestErr = groupError(values, indices, n, best, range);
      const plainParams = best;
      for (const r of ratios) {
        if (r === 1) continue;
        const p = groupParams(min * r, max * r, range, symmetric);
        const e = groupError(values, indices, n, p, range);
        if (e < bestErr) { bestErr = e; best = p; }
      }
      if (plain) {
        for (let k = 0; k < n; k++) {
          const x = values[indices[k]!]!;
          const d = Math.abs(Math.fround((quantizeValue(x, plainParams, range) - plainParams.zeroPoint) * plainParams.scale) - x);
          if (d > plain.maxAbs) plain.maxAbs = d;
          plain.errSq += d * d; plain.refSq += x * x; plain.count++;
        }
      }
    }
    scales[g] = best.scale;
    zeroPoints[g] = best.zeroPoint;
    const p = best;
    groups.forEach(g, (i) => {
      const x = values[i]!;
      const q = quantizeValue(x, p, range);
      codes[i] = q;
      const y = Math.fround((q - p.zeroPoint) * p.scale);
      const d = Math.abs(y - x);
      if (d > acc.maxAbs) acc.maxAbs = d;
      acc.errSq += d * d;
      acc.refSq += x * x;
      if (y === 0) acc.zeros++;
      acc.count++;
    });
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
    blocks,
    forEach: (g, visit) => {
      const i = g % inner;
      const rest = (g - i) / inner;
      const b = rest % blocks;
      const o = (rest - b) / blocks;
      const end = Math.min(length, (b + 1) * block);
      for (let k = b * block; k < end; k++) visit((o * length + k) * inner + i);
    },
  };
}

/** Packs 4-bit codes two to a byte, the first in the low nibble (ONNX INT4/UINT4 raw_data). */
export function packNibbles(codes: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < codes.length; i += 2) {
    const lo = codes[i]! & 0x0f;
    const hi = i + 1 < codes.length ? codes[i + 1]! & 0x0f : 0;
    out[i >> 1] = lo | (hi << 4);
  }
  return out;
}
