// GPTQ's sweep (Frantar et al., 2022), the arithmetic: W [K, N] quantized one input feature at a
// time, each row's rounding error spread over the rows still to come through U, the damped inverse
// Hessian's upper factor (cholesky.ts). quantize/gptq.ts plans it (calibration, the factors) and the
// passes run it, as a kernel job on any thread.
import { readInChunks, type JobKind } from './job.js';
import { simdKernels } from './simd.js';
import { ErrorAccumulator, codesFor, groupParams, type IntRange, type QuantizeResult } from './quantize.js';
import type { FloatSource } from '../ir/tensor.js';

const ROUND = 6755399441055744;

export interface GptqOptions {
  range: IntRange;
  symmetric: boolean;
  /** Block length along K (a scale per block and column), or undefined for one scale per column. */
  block?: number;
  damp?: number;
  /**
   * Clip ratios tried for each group's scale (on the values as updated so far). Measured on the char
   * LM, plain min/max scales do better under GPTQ than the search (perplexity: bench/RESULTS.md,
   * §"Figures moved from source comments"), so the passes leave this unset.
   */
  clipRatios?: number[];
}

/**
 * Quantizes W [K, N] (row-major). Scales are numbered like perBlock([K, N], 0, block) (block b,
 * column n → b·N + n), or by column when there are no blocks. Error figures compare with the original W.
 */
export function gptqQuantize(original: Float32Array, k: number, n: number, u: Float64Array, options: GptqOptions): QuantizeResult {
  const { range, symmetric } = options;
  const lo = range.min,
    hi = range.max;
  const block = options.block ?? k;
  const blocks = Math.ceil(k / block);
  // W, U and the error row live in the kernels' memory: the compensation below runs there.
  const space = simdKernels().sweepSpace(k, n, 1);
  space.u.set(u);
  const w = space.w;
  for (let i = 0; i < k * n; i++) w[i] = original[i]!;
  const codes = codesFor(range, k * n);
  const scales = new Float32Array(blocks * n);
  const zeroPoints = new Int16Array(blocks * n);
  const ratios = options.clipRatios ?? [1];
  const err = space.e;
  for (let row = 0; row < k; row++) {
    if (row % block === 0) {
      const b = row / block;
      const end = Math.min(k, row + block);
      for (let c = 0; c < n; c++) {
        let min = Infinity,
          max = -Infinity;
        for (let r = row; r < end; r++) {
          if (original[r * n + c] === 0) continue;
          const x = w[r * n + c]!;
          if (x < min) min = x;
          if (x > max) max = x;
        }
        if (min > max) min = max = 0;
        let best = groupParams(min, max, range, symmetric),
          bestErr = Infinity;
        for (const ratio of ratios) {
          const p = ratio === 1 ? best : groupParams(min * ratio, max * ratio, range, symmetric);
          let e = 0;
          for (let r = row; r < end; r++) {
            if (original[r * n + c] === 0) continue;
            const x = w[r * n + c]!;
            let q = x / p.scale + ROUND - ROUND + p.zeroPoint;
            q = q < lo ? lo : q > hi ? hi : q;
            const d = Math.fround((q - p.zeroPoint) * p.scale) - x;
            e += d * d;
          }
          if (e < bestErr) {
            bestErr = e;
            best = p;
          }
        }
        scales[b * n + c] = best.scale;
        zeroPoints[b * n + c] = best.zeroPoint;
      }
    }
    const b = Math.floor(row / block);
    const d = u[row * k + row]!;
    for (let c = 0; c < n; c++) {
      const scale = scales[b * n + c]!,
        zp = zeroPoints[b * n + c]!;
      const x = w[row * n + c]!;
      // A weight that is exactly zero (pruned) stays zero: its code is the zero point, and what the
      // updates moved onto it is spread over the weights still to come, as SparseGPT does with a mask.
      let q = original[row * n + c] === 0 ? zp : x / scale + ROUND - ROUND + zp;
      q = q < lo ? lo : q > hi ? hi : q;
      codes[row * n + c] = q;
      err[c] = (x - Math.fround((q - zp) * scale)) / d;
    }
    // Compensate in the rows still to be quantized: row r − U[row, r] · err (assembly/cholesky.ts).
    space.subScaledRows(row + 1, k - row - 1, row * k + row + 1, 0);
  }
  const acc = new ErrorAccumulator();
  for (let i = 0; i < codes.length; i++) {
    const g = Math.floor(Math.floor(i / n) / block) * n + (i % n);
    const y = Math.fround((codes[i]! - zeroPoints[g]!) * scales[g]!);
    const x = original[i]!;
    const dd = Math.abs(y - x);
    if (dd > acc.maxAbs) acc.maxAbs = dd;
    acc.errSq += dd * dd;
    acc.refSq += x * x;
    if (y === 0) acc.zeros++;
    acc.count++;
  }
  return { codes, scales, zeroPoints, error: acc.result() };
}

/** One weight's sweep on a kernel thread. */
export interface GptqJob extends GptqOptions {
  kind: 'gptq';
  /** W [K, N]. */
  values: Float32Array | FloatSource;
  k: number;
  n: number;
  /** U [K, K] for this weight's layer input (quantize/gptq.ts planGptq). */
  factor: Float64Array;
}

export const GPTQ_JOB: JobKind<GptqJob, QuantizeResult> = {
  input: 'values',
  execute: (job) => gptqQuantize(readInChunks(job.values), job.k, job.n, job.factor, job),
};
