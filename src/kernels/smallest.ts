// Zeroing the smallest magnitudes of a tensor, and the selection behind it: in the WebAssembly
// kernels where the tensor fits their memory, else in plain JavaScript.
import { toFloat32, type FloatSource } from '../ir/tensor.js';
import { simdFits, simdKernels } from './simd.js';
import { weightError, type WeightError } from './weight-error.js';
import type { JobKind } from './job.js';

/** The k-th smallest value (0-based) of `a`, which is reordered (Hoare's selection, O(n) expected). */
export function kthSmallest(a: Float32Array, k: number): number {
  let lo = 0,
    hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo,
      j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/**
 * Zeroes exactly `count` of the smallest-magnitude values (ties broken by position, so the result
 * is deterministic). Returns the pruned copy.
 */
export function pruneSmallest(values: Float32Array | FloatSource, count: number): PruneResult {
  // The WebAssembly kernels select by radix (far faster: bench/RESULTS.md, §"Figures moved from
  // source comments") and count the zeros and the error on the way; this scalar code stays for
  // tensors too large for their memory, and as the reference in the tests.
  if (simdFits(values.length)) return simdKernels().pruneSmallest(values, count);
  const original = toFloat32(values);
  const pruned = pruneSmallestScalar(original, count);
  return { values: pruned, zeros: zeros(pruned), error: weightError(original, pruned) };
}

/** pruneSmallest in plain JavaScript (quickselect). */
export function pruneSmallestScalar(values: Float32Array, count: number): Float32Array {
  const out = values.slice();
  if (count <= 0) return out;
  if (count >= values.length) return out.fill(0);
  const abs = magnitudes(values);
  const threshold = kthSmallest(abs, count - 1);
  let below = 0;
  for (let i = 0; i < values.length; i++) if (Math.abs(values[i]!) < threshold) below++;
  let atThreshold = count - below;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]!);
    if (a < threshold) out[i] = 0;
    else if (a === threshold && atThreshold > 0) {
      out[i] = 0;
      atThreshold--;
    }
  }
  return out;
}

function magnitudes(values: Float32Array, into = new Float32Array(values.length), at = 0): Float32Array {
  for (let i = 0; i < values.length; i++) into[at + i] = Math.abs(values[i]!);
  return into;
}

/** The k-th smallest magnitude (0-based) of all the arrays together. */
export function kthMagnitude(arrays: Float32Array[], total: number, k: number): number {
  if (simdFits(total)) return simdKernels().kthMagnitude(arrays, k);
  const all = new Float32Array(total);
  let at = 0;
  for (const a of arrays) {
    magnitudes(a, all, at);
    at += a.length;
  }
  return kthSmallest(all, k);
}

function zeros(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === 0) n++;
  return n;
}

/** Pruned values, and the error against the values before. */
export interface PruneResult {
  values: Float32Array;
  zeros: number;
  error: WeightError;
}

export interface PruneJob {
  kind: 'prune';
  values: Float32Array | FloatSource;
  /** How many of the smallest magnitudes to zero. */
  count: number;
}

export const PRUNE_JOB: JobKind<PruneJob, PruneResult> = {
  input: 'values',
  execute: (job) => pruneSmallest(job.values, job.count),
};
