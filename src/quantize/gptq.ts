// GPTQ (Frantar et al., 2022): quantize a weight W [K, N] one input feature k at a time and spread
// each row's rounding error over the rows not yet quantized, in proportion to how the calibration
// inputs correlate (the inverse of H = XᵀX). The layer's output error, not the weight error, is what
// it minimizes; the weight error it leaves is usually larger than round-to-nearest's.
import { silentProgress, type Progress } from '../kernels/progress.js';
import type { Model } from '../ir/model.js';
import type { Weight } from '../ir/weights.js';
import { calibrate, type Calibration, type GramRequest } from '../runtime/calibrate.js';
import { KernelPool } from '../kernels/pool.js';
import { simdKernels } from '../kernels/simd.js';
import { ErrorAccumulator, codesFor, groupParams, type IntRange, type QuantizeResult } from '../kernels/quantize.js';

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

/** Weights GPTQ can take: [K, N] read by MatMul (or Gemm without transB) nodes of the main graph. */
export function gptqEligible(model: Model, w: Weight): boolean {
  return (
    w.uses.length > 0 &&
    w.tensor.dims.length === 2 &&
    w.uses.every((u) => u.graph === model.graph && !!u.node.input[0] && (u.role === 'matmul' || (u.role === 'gemm' && u.outputAxis === 1)))
  );
}

export interface GptqPlan {
  /** The upper factor U (UᵀU = H⁻¹) for each weight that will be quantized with GPTQ. */
  factors: Map<Weight, Float64Array>;
  note: string;
}

/** The layer inputs whose XᵀX GPTQ needs for these weights. */
export function gptqRequests(model: Model, weights: Weight[]): GramRequest[] {
  return weights
    .filter((w) => gptqEligible(model, w))
    .flatMap((w) => w.uses.map((u) => ({ name: u.node.input[0]!, k: Number(w.tensor.dims[0]) })));
}

/**
 * Runs the calibration data through the model (or takes a calibration already run) and prepares GPTQ
 * for every eligible weight. `inputScales`: weights whose rows were multiplied by s (AWQ), whose layer
 * input is then X / s, so that their curvature is diag(1/s)·XᵀX·diag(1/s). `progress` hears the
 * calibration runs, then the weights factored (BERT-base: tens of seconds each).
 */
export async function planGptq(
  model: Model,
  weights: Weight[],
  data: string | Calibration,
  {
    damp = 0.01,
    inputScales,
    progress = silentProgress,
    threads = 1,
  }: { damp?: number; inputScales?: Map<Weight, Float32Array>; progress?: Progress; threads?: number } = {},
): Promise<GptqPlan> {
  const eligible = weights.filter((w) => gptqEligible(model, w));
  const calibration = typeof data === 'string' ? await calibrate(model, { grams: gptqRequests(model, eligible) }, data, progress) : data;
  const factors = new Map<Weight, Float64Array>();
  // A calibration run here is this plan's own: each XᵀX is let go once the last weight reading that
  // input has its factor, so that the factors do not add up on top of every XᵀX (BERT-base: 1.08 GB each).
  const owned = typeof data === 'string';
  const readers = new Map<string, number>();
  for (const w of eligible) for (const u of w.uses) readers.set(u.node.input[0]!, (readers.get(u.node.input[0]!) ?? 0) + 1);
  const done = (w: Weight) => {
    if (!owned) return;
    for (const u of w.uses) {
      const left = readers.get(u.node.input[0]!)! - 1;
      readers.set(u.node.input[0]!, left);
      if (left === 0) calibration.gram.delete(u.node.input[0]!);
    }
  };
  let singular = 0;
  progress.start(eligible.length, 'factoring');
  // The factors are computed on every kernel thread (they were most of GPTQ's time, on this thread
  // alone: bench/RESULTS.md, "GPTQ's factors on every thread"), a few in flight: each holds its H.
  const pool = new KernelPool(threads);
  const inFlight = new Set<Promise<void>>();
  try {
    for (const w of eligible) {
      const k = Number(w.tensor.dims[0]);
      const h = new Float64Array(k * k);
      let complete = true;
      for (const u of w.uses) {
        const g = calibration.gram.get(u.node.input[0]!);
        if (!g || g.k !== k) {
          complete = false;
          break;
        }
        for (let i = 0; i < h.length; i++) h[i]! += g.matrix[i]!;
      }
      done(w);
      if (!complete) {
        progress.tick(1);
        continue;
      }
      const s = inputScales?.get(w);
      if (s) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) h[i * k + j]! /= s[i]! * s[j]!;
      // h, this weight's own sum, becomes the factor.
      const job: Promise<void> = pool.run({ kind: 'factor', matrix: new Uint8Array(h.buffer), n: k, damp }).then((r) => {
        if ('factor' in r) factors.set(w, r.factor);
        else singular++;
        progress.tick(1);
        inFlight.delete(job);
      });
      // Awaited below; handled here too, so that one left behind by another's failure is not unhandled.
      job.catch(() => {});
      inFlight.add(job);
      while (inFlight.size > threads) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    await pool.close();
  }
  progress.stop();
  const others = weights.length - factors.size;
  return {
    factors,
    note:
      `GPTQ on ${factors.size} weights, calibrated on ${calibration.samples} samples from ${calibration.source}` +
      (others
        ? `; ${others} others rounded as usual (not MatMul weights of the main graph${singular ? `, or ${singular} with singular curvature` : ''})`
        : ''),
  };
}
