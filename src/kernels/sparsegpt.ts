// SparseGPT (Frantar & Alistarh, 2023): prune a layer's weight W [K, N] one input feature k at a
// time and move each pruned weight's contribution onto the input features not yet visited, in
// proportion to how the calibration inputs correlate (the inverse of H = XᵀX, read through its upper
// Cholesky factor U, UᵀU = H⁻¹) — optimal brain surgeon's update, done row by row as GPTQ does for
// rounding. Which weights are pruned is chosen as the sweep goes: for a block of `block` features at
// a time (unstructured, adaptive mask selection) or for each group of M features (N:M), by the
// saliency w² / [U]ₖₖ², on the weights as updated so far. Updates past the current block wait until
// the block is done and are applied together (lazy block updates).
import { readInChunks, type JobKind } from './job.js';
import type { FloatSource } from '../ir/tensor.js';
import type { JobProgress } from './progress.js';
import { kthSmallest, type PruneResult } from './smallest.js';
import { weightError } from './weight-error.js';
import { inverseFactorInPlace } from './cholesky.js';
import { simdKernels } from './simd.js';
import { dampedHessian, refitKept } from './refit.js';

export interface SparsityPattern {
  /** Fraction of the weights to zero (unstructured); ignored with `nm`. */
  sparsity: number;
  /** N:M: `n` kept of every `m` consecutive input features (for each output). */
  nm?: { n: number; m: number };
}

/** Values [rows, cols] as [cols, rows] (both row-major). */
export function transpose(values: ArrayLike<number>, rows: number, cols: number, into: Float32Array | Float64Array): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) into[c * rows + r] = values[r * cols + c]!;
}

/**
 * Marks in `mask` the `count` smallest of `scores` (ties: the earlier position first), so that the
 * choice never depends on anything but the scores and their order.
 */
export function markSmallest(scores: Float64Array, count: number, mask: Uint8Array, scratch: Float32Array): void {
  mask.fill(0, 0, scores.length);
  if (count <= 0) return;
  if (count >= scores.length) {
    mask.fill(1, 0, scores.length);
    return;
  }
  const tmp = scratch.subarray(0, scores.length);
  for (let i = 0; i < scores.length; i++) tmp[i] = scores[i]!;
  const threshold = kthSmallest(tmp, count - 1);
  let marked = 0;
  for (let i = 0; i < scores.length; i++) {
    if (Math.fround(scores[i]!) >= threshold) continue;
    mask[i] = 1;
    marked++;
  }
  for (let i = 0; i < scores.length && marked < count; i++) {
    if (mask[i] || Math.fround(scores[i]!) !== threshold) continue;
    mask[i] = 1;
    marked++;
  }
}

/**
 * In each group of `m` consecutive scores (stride `stride` apart, starting at `at`), marks the m − n
 * smallest (ties: the later position first, as N:M magnitude pruning keeps the earlier).
 */
export function markGroupSmallest(scores: ArrayLike<number>, at: number, stride: number, n: number, m: number, mask: Uint8Array): void {
  for (let drop = 0; drop < m - n; drop++) {
    let best = -1,
      bestScore = Infinity;
    for (let j = 0; j < m; j++) {
      const i = at + j * stride;
      if (mask[i]) continue;
      const s = scores[i]!;
      if (s <= bestScore) {
        bestScore = s;
        best = i;
      }
    }
    mask[best] = 1;
  }
}

export interface SparseGptOptions extends SparsityPattern {
  /** Features per lazy block (also the span of the adaptive unstructured mask). */
  block: number;
}

/**
 * Prunes W [K, N] (row-major) with the factor U [K, K] of the damped H⁻¹. Returns the pruned
 * values, their zero count, the weight error against `original`, and the loss Σ (w / Uₖₖ)² of the
 * pruned weights (the rise of ‖XW − XW'‖² on the calibration rows, damped H).
 */
export function sparseGpt(
  original: Float32Array,
  k: number,
  n: number,
  u: Float64Array,
  options: SparseGptOptions,
  progress?: JobProgress,
): PruneResult & { loss: number } {
  const { block, nm } = options;
  // W, U and the block's error rows live in the kernels' memory: the updates run there.
  const space = simdKernels().sweepSpace(k, n, block);
  space.u.set(u);
  const w = space.w;
  for (let i = 0; i < k * n; i++) w[i] = original[i]!;
  const err = space.e;
  const mask = new Uint8Array(block * n);
  const scores = new Float64Array(block * n);
  const scratch = new Float32Array(block * n);
  let pruned = 0,
    loss = 0;
  for (let b0 = 0; b0 < k; b0 += block) {
    const b1 = Math.min(k, b0 + block);
    const size = (b1 - b0) * n;
    if (nm) mask.fill(0, 0, size);
    else {
      for (let r = b0; r < b1; r++) {
        const d2 = u[r * k + r]! ** 2;
        for (let c = 0; c < n; c++) scores[(r - b0) * n + c] = w[r * n + c]! ** 2 / d2;
      }
      // The block's share of the target, counted so that the blocks together prune exactly it.
      markSmallest(scores.subarray(0, size), Math.floor(options.sparsity * b1 * n) - pruned, mask, scratch);
      for (let i = 0; i < size; i++) pruned += mask[i]!;
    }
    for (let r = b0; r < b1; r++) {
      const local = r - b0;
      if (nm && (r - b0) % nm.m === 0) {
        // The group's scores on its weights as updated so far (the rows above moved them).
        for (let j = 0; j < nm.m; j++) {
          const d2 = u[(r + j) * k + r + j]! ** 2;
          for (let c = 0; c < n; c++) scores[(local + j) * n + c] = w[(r + j) * n + c]! ** 2 / d2;
        }
        for (let c = 0; c < n; c++) markGroupSmallest(scores, local * n + c, n, nm.n, nm.m, mask);
      }
      const d = u[r * k + r]!;
      const e = err.subarray(local * n, (local + 1) * n);
      for (let c = 0; c < n; c++) {
        if (mask[local * n + c]) {
          const x = w[r * n + c]!;
          e[c] = x / d;
          loss += (x / d) ** 2;
          w[r * n + c] = 0;
        } else e[c] = 0;
      }
      // Rows r2 in the block after r: minus U[r, r2] · e (assembly/cholesky.ts).
      space.subScaledRows(r + 1, b1 - r - 1, r * k + r + 1, local);
    }
    // The block's updates to every later feature, together.
    space.blockUpdate(b1, k, b0, b1);
    progress?.(b1 / k);
  }
  const values = new Float32Array(k * n);
  let zeros = 0;
  for (let i = 0; i < values.length; i++) if ((values[i] = w[i]!) === 0) zeros++;
  return { values, zeros, error: weightError(original, values), loss };
}

export interface SparseGptJob extends SparseGptOptions {
  kind: 'sparsegpt';
  /** The weight's values: [K, N], or [N, K] when `transposed` (a Gemm with transB). */
  values: Float32Array | FloatSource;
  k: number;
  n: number;
  transposed: boolean;
  /** H = XᵀX [K, K] over the calibration rows; the job turns it into U in place. */
  hessian: Float64Array;
  /** Damping, as a fraction of H's mean diagonal. */
  damp: number;
  /** Conjugate-gradient steps of the least-squares refit of the kept weights after the sweep (0: none; kernels/refit.ts). */
  refit: number;
}

export interface SparseGptResult extends PruneResult {
  loss: number;
}

/** The pruned layer, or `singular` where H is not positive definite with this damping (the caller may raise it). */
export const SPARSEGPT_JOB: JobKind<SparseGptJob, SparseGptResult | { singular: true }> = {
  input: 'values',
  execute: (job, progress) => {
    const { k, n } = job;
    // The refit reads H itself, which the factor overwrites.
    const damped = job.refit > 0 ? dampedHessian(job.hessian, k, job.damp) : undefined;
    if (!inverseFactorInPlace(job.hessian, k, job.damp)) return { singular: true };
    const given = readInChunks(job.values);
    let original = given;
    if (job.transposed) transpose(given, n, k, (original = new Float32Array(k * n)));
    const swept = sparseGpt(original, k, n, job.hessian, job, damped ? (f) => progress?.(f / 2) : progress);
    let result: PruneResult & { loss: number } = swept;
    if (damped) {
      const { values, loss } = refitKept(original, swept.values, k, n, damped, job.refit, (f) => progress?.(0.5 + f / 2));
      let zeros = 0;
      for (let i = 0; i < values.length; i++) if (values[i] === 0) zeros++;
      result = { values, zeros, error: weightError(original, values), loss };
    }
    if (!job.transposed) return result;
    const values = new Float32Array(k * n);
    transpose(result.values, k, n, values);
    return { ...result, values };
  },
};
