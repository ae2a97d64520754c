// GPTQ (Frantar et al., 2022): quantize a weight W [K, N] one input feature k at a time and spread
// each row's rounding error over the rows not yet quantized, in proportion to how the calibration
// inputs correlate (the inverse of H = XᵀX). The layer's output error, not the weight error, is what
// it minimizes; the weight error it leaves is usually larger than round-to-nearest's. Here: which
// weights it takes, their calibration and factors (the plan); the sweep is kernels/gptq.ts.
import { silentProgress, type Progress } from '../kernels/progress.js';
import type { Model } from '../ir/model.js';
import type { Weight } from '../ir/weights.js';
import { calibrate, type Calibration, type GramRequest } from '../runtime/calibrate.js';
import { KernelPool } from '../kernels/pool.js';

// The sweep itself is a kernel (it runs as a job on any thread).
export { gptqQuantize, type GptqOptions } from '../kernels/gptq.js';

/** A copy of `a` in a SharedArrayBuffer. */
function shared(a: Float64Array): Float64Array {
  const out = new Float64Array(new SharedArrayBuffer(a.byteLength));
  out.set(a);
  return out;
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
  const calibration =
    typeof data === 'string' ? await calibrate(model, { grams: gptqRequests(model, eligible) }, data, progress, threads) : data;
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
        // In shared memory: each sweep job that reads it, offered to every worker thread, shares it
        // instead of carrying a copy (BERT-base's 73 factors are 1.2 GB).
        if ('factor' in r) factors.set(w, shared(r.factor));
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
