// The least-squares refit of a pruned layer's kept weights: with the zeros fixed, each output's kept
// weights w minimize (w₀ − w)ᵀ H (w₀ − w), H = XᵀX damped as SparseGPT damps it — the layer's output
// error on the calibration rows. SparseGPT's sweep updates each weight once, from the features not
// yet visited, so its weights are short of that minimum; solving it exactly per output costs a
// (K/2)³ factorization each (BERT-base's FFN output: 768 of 1536³), so conjugate gradients run on
// many outputs at once instead (OUTPUTS_AT_ONCE), one H·P product per step (assembly/cholesky.ts
// symMul32), preconditioned by H's diagonal and started from the sweep's weights. The char LM: 2:4
// +28.65 % perplexity → +16.2 % after 10 steps (bench/RESULTS.md, §"SparseGPT's refit").
import type { JobProgress } from './progress.js';
import { simdKernels, type ProductSpace } from './simd.js';
import { dampDiagonal } from './cholesky.js';

/** H damped as the factor damps it (kernels/cholesky.ts dampDiagonal), in float32. */
export function dampedHessian(h: Float64Array, k: number, damp: number): Float32Array {
  const out = Float32Array.from(h);
  dampDiagonal(h, k, damp, out);
  return out;
}

export interface Refit {
  values: Float32Array;
  /** (w₀ − w)ᵀ H (w₀ − w) summed over the outputs, after the refit. */
  loss: number;
}

/**
 * Outputs refitted together. Each output's refit is independent of the others' (and its bits do not
 * depend on which others share its product), so the outputs go a slice at a time: the conjugate
 * gradients hold five float64 arrays of K × this, where all N of a 7B-parameter LM's FFN layer
 * (K = 4096, N = 11008) would take 1.8 GB.
 */
const OUTPUTS_AT_ONCE = 512;

/**
 * The kept (non-zero) weights of `pruned` [K, N] (row-major: input features × outputs) refitted to
 * `original` through the damped `hessian` [K, K] in `steps` conjugate-gradient steps. Zeros stay
 * zeros. A slice of outputs whose refit would not lower the loss (it does in exact arithmetic; the
 * products are float32) keeps the pruned weights. `progress` hears the fraction of the work done.
 */
export function refitKept(
  original: Float32Array,
  pruned: Float32Array,
  k: number,
  n: number,
  hessian: Float32Array,
  steps: number,
  progress?: JobProgress,
): Refit {
  const width = Math.min(n, OUTPUTS_AT_ONCE);
  const space = simdKernels().productSpace(k, width);
  space.h.set(hessian);
  const inverseDiagonal = new Float64Array(k);
  for (let i = 0; i < k; i++) inverseDiagonal[i] = 1 / hessian[i * k + i]!;
  const values = new Float32Array(k * n);
  const sliceOriginal = new Float32Array(k * width),
    slicePruned = new Float32Array(k * width);
  let loss = 0;
  for (let c0 = 0; c0 < n; c0 += width) {
    const w = Math.min(width, n - c0);
    for (let i = 0; i < k; i++) {
      sliceOriginal.set(original.subarray(i * n + c0, i * n + c0 + w), i * w);
      slicePruned.set(pruned.subarray(i * n + c0, i * n + c0 + w), i * w);
    }
    const done = refitSlice(sliceOriginal.subarray(0, k * w), slicePruned.subarray(0, k * w), k, w, space, inverseDiagonal, steps, (f) =>
      progress?.((c0 + f * w) / n),
    );
    loss += done.loss;
    for (let i = 0; i < k; i++) values.set(done.values.subarray(i * w, (i + 1) * w), i * n + c0);
  }
  return { values, loss };
}

/** One slice of outputs (refitKept): [K, n] weights, the product space already holding H (and room for n columns). */
function refitSlice(
  original: Float32Array,
  pruned: Float32Array,
  k: number,
  n: number,
  space: ProductSpace,
  inverseDiagonal: Float64Array,
  steps: number,
  progress: JobProgress,
): Refit {
  const size = k * n;
  const keep = new Uint8Array(size);
  for (let i = 0; i < size; i++) keep[i] = pruned[i] !== 0 ? 1 : 0;
  const p = space.p,
    q = space.q;
  // R₀ = H(w₀ − w) on the kept positions: the negative gradient at the sweep's weights.
  for (let i = 0; i < size; i++) p[i] = original[i]! - pruned[i]!;
  space.multiply(n);
  let startLoss = 0;
  const r0 = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    startLoss += p[i]! * q[i]!;
    r0[i] = keep[i] ? q[i]! : 0;
  }
  const r = r0.slice();
  const z = new Float64Array(size);
  const dir = new Float64Array(size);
  const moved = new Float64Array(size);
  const rz = new Float64Array(n),
    next = new Float64Array(n),
    pq = new Float64Array(n),
    alpha = new Float64Array(n),
    beta = new Float64Array(n);
  // z = D⁻¹r (D: H's diagonal) and Σ r·z per output; the loops run along rows, outputs innermost.
  for (let i = 0, at = 0; i < k; i++) {
    const s = inverseDiagonal[i]!;
    for (let c = 0; c < n; c++, at++) {
      const zi = r[at]! * s;
      z[at] = zi;
      dir[at] = zi;
      p[at] = zi;
      rz[c]! += r[at]! * zi;
    }
  }
  for (let step = 0; step < steps; step++) {
    space.multiply(n);
    pq.fill(0);
    for (let at = 0; at < size; at += n)
      for (let c = 0; c < n; c++) {
        const x = keep[at + c] ? q[at + c]! : (q[at + c] = 0);
        pq[c]! += dir[at + c]! * x;
      }
    for (let c = 0; c < n; c++) alpha[c] = pq[c]! > 0 ? rz[c]! / pq[c]! : 0;
    next.fill(0);
    for (let i = 0, at = 0; i < k; i++) {
      const s = inverseDiagonal[i]!;
      for (let c = 0; c < n; c++, at++) {
        const a = alpha[c]!;
        moved[at]! += a * dir[at]!;
        const ri = (r[at]! -= a * q[at]!);
        const zi = ri * s;
        z[at] = zi;
        next[c]! += ri * zi;
      }
    }
    for (let c = 0; c < n; c++) beta[c] = rz[c]! > 0 ? next[c]! / rz[c]! : 0;
    for (let at = 0; at < size; at += n)
      for (let c = 0; c < n; c++) {
        const d = z[at + c]! + beta[c]! * dir[at + c]!;
        dir[at + c] = d;
        p[at + c] = d;
      }
    rz.set(next);
    progress((step + 1) / steps);
  }
  // loss(w + Δ) = loss(w) − Σ Δ·(R₀ + R), R = R₀ − HΔ on the kept positions (Δ is zero elsewhere).
  let drop = 0;
  for (let i = 0; i < size; i++) drop += moved[i]! * (r0[i]! + r[i]!);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = keep[i] ? pruned[i]! + moved[i]! : 0;
  if (!(drop > 0)) return { values: pruned, loss: startLoss };
  return { values, loss: startLoss - drop };
}
