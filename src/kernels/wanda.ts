// Wanda (Sun et al., 2023): a weight's importance is its magnitude times the L2 norm of the input
// feature it multiplies over the calibration data, |W[k, j]| · ‖X_k‖₂, and weights are compared
// within each output j (the paper's comparison group), across the whole layer, or in each group of
// M consecutive input features for N:M. No weight is updated.
import { readInChunks, type JobKind } from './job.js';
import type { FloatSource } from '../ir/tensor.js';
import type { JobProgress } from './progress.js';
import type { PruneResult } from './smallest.js';
import { markGroupSmallest, markSmallest, transpose, type SparsityPattern } from './sparsegpt.js';
import { weightError } from './weight-error.js';

/** Where Wanda's scores are compared: within each output (the paper's), or across the layer. */
export type WandaGroup = 'output' | 'layer';

/**
 * Prunes W [K, N] (row-major) by Wanda's score with `norms` (‖X_k‖₂ for each of the K input
 * features): `sparsity` of each output's K weights (or of the layer's), or N:M along K.
 */
export function wanda(
  original: Float32Array,
  k: number,
  n: number,
  norms: Float64Array,
  pattern: SparsityPattern & { compare: WandaGroup },
  progress?: JobProgress,
): PruneResult {
  if (pattern.compare === 'layer' && !pattern.nm) return wandaLayer(original, k, n, norms, pattern.sparsity);
  const values = original.slice();
  const scores = new Float64Array(k);
  const mask = new Uint8Array(k);
  const scratch = new Float32Array(k);
  const count = Math.floor(pattern.sparsity * k);
  for (let c = 0; c < n; c++) {
    for (let r = 0; r < k; r++) scores[r] = Math.abs(original[r * n + c]!) * norms[r]!;
    if (pattern.nm) {
      mask.fill(0);
      for (let r = 0; r < k; r += pattern.nm.m) markGroupSmallest(scores, r, 1, pattern.nm.n, pattern.nm.m, mask);
    } else markSmallest(scores, count, mask, scratch);
    for (let r = 0; r < k; r++) if (mask[r]) values[r * n + c] = 0;
    if ((c & 255) === 255) progress?.(c / n);
  }
  let zeros = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) zeros++;
  return { values, zeros, error: weightError(original, values) };
}

/** Wanda compared across the whole layer: the layer's `sparsity` of lowest scores. */
function wandaLayer(original: Float32Array, k: number, n: number, norms: Float64Array, sparsity: number): PruneResult {
  const scores = new Float64Array(k * n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) scores[r * n + c] = Math.abs(original[r * n + c]!) * norms[r]!;
  const mask = new Uint8Array(k * n);
  markSmallest(scores, Math.floor(sparsity * k * n), mask, new Float32Array(k * n));
  const values = original.slice();
  let zeros = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask[i]) values[i] = 0;
    if (values[i] === 0) zeros++;
  }
  return { values, zeros, error: weightError(original, values) };
}

export interface WandaJob extends SparsityPattern {
  compare: WandaGroup;
  kind: 'wanda';
  /** The weight's values: [K, N], or [N, K] when `transposed` (a Gemm with transB). */
  values: Float32Array | FloatSource;
  k: number;
  n: number;
  transposed: boolean;
  /** ‖X_k‖₂ for each input feature. */
  norms: Float64Array;
}

export const WANDA_JOB: JobKind<WandaJob, PruneResult> = {
  input: 'values',
  execute: (job, progress) => {
    const { k, n } = job;
    const given = readInChunks(job.values);
    if (!job.transposed) return wanda(given, k, n, job.norms, job, progress);
    // [N, K]: each output's K weights are one row already; scores go column by column on the copy.
    const original = new Float32Array(k * n);
    transpose(given, n, k, original);
    const result = wanda(original, k, n, job.norms, job, progress);
    const values = new Float32Array(k * n);
    transpose(result.values, k, n, values);
    return { ...result, values };
  },
};
