// N:M selection over a whole tensor: of every m values along an axis, the n largest in magnitude are kept.
import { toFloat32, type FloatSource } from '../ir/tensor.js';
import { simdFits, simdKernels } from './simd.js';
import { weightErrorOf } from './weight-error.js';
import type { JobKind } from './job.js';
import type { PruneResult } from './smallest.js';

/**
 * Positions 0..size of `values` in `order`, smallest magnitude first; among equal magnitudes the
 * later position first, so that zeroing a prefix keeps the earlier one. An insertion sort over a
 * reused array: sorting a fresh array with a comparator per group made N:M pruning of BERT-base take
 * many seconds (bench/RESULTS.md, §"Figures moved from source comments").
 */
function smallestFirst(values: Float32Array, size: number, order: Int32Array): void {
  for (let a = 0; a < size; a++) {
    const v = Math.abs(values[a]!);
    let b = a - 1;
    // Everything before is earlier in position, so an equal magnitude moves after this one.
    while (b >= 0 && Math.abs(values[order[b]!]!) >= v) {
      order[b + 1] = order[b]!;
      b--;
    }
    order[b + 1] = a;
  }
}

/**
 * In every group of `m` consecutive values along `axis` of a tensor shaped `dims` (whose length
 * there is a multiple of m), keeps the `n` largest magnitudes (ties: the earlier) and zeroes the
 * rest. Returns the pruned copy, how many of its values are zero, and the error against the values
 * before.
 *
 * Groups are walked row by row along the innermost axis, reading the m rows of a block side by
 * side: going group by group through a general gather (index arithmetic per value) was seconds
 * slower on BERT-base's weights for 2:4 (bench/RESULTS.md, §"Figures moved from source comments").
 */
export function pruneNM(source: Float32Array | FloatSource, dims: number[], axis: number, n: number, m: number): PruneResult {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const length = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  // The WebAssembly kernel takes four columns at a time, much faster than this JavaScript
  // (bench/RESULTS.md, §"What changed, each measured against the build before it", 233b8f8);
  // this code stays for tensors too large for its memory.
  if (simdFits(source.length)) return simdKernels().pruneNM(source, outer, length, inner, n, m);
  return pruneNMScalar(source, outer, length, inner, n, m);
}

/** pruneNM in plain JavaScript, over [outer, length, inner]. */
export function pruneNMScalar(
  source: Float32Array | FloatSource,
  outer: number,
  length: number,
  inner: number,
  n: number,
  m: number,
): PruneResult {
  // Values read from the file are a fresh copy, pruned in place; values in memory are copied.
  const values = source instanceof Float32Array ? source.slice() : toFloat32(source);
  const group = new Float32Array(m),
    order = new Int32Array(m);
  let zeros = 0,
    refSq = 0,
    errSq = 0,
    maxAbs = 0;
  for (let o = 0; o < outer; o++) {
    for (let k0 = 0; k0 < length; k0 += m) {
      const base = (o * length + k0) * inner;
      for (let i = 0; i < inner; i++) {
        for (let j = 0; j < m; j++) {
          const x = values[base + j * inner + i]!;
          group[j] = x;
          refSq += x * x;
        }
        smallestFirst(group, m, order);
        for (let k = 0; k < m - n; k++) {
          const j = order[k]!,
            x = group[j]!;
          values[base + j * inner + i] = 0;
          errSq += x * x;
          if (Math.abs(x) > maxAbs) maxAbs = Math.abs(x);
        }
        // The kept values that are zero already count too.
        zeros += m - n;
        for (let k = m - n; k < m; k++) if (group[order[k]!] === 0) zeros++;
      }
    }
  }
  return { values, zeros, error: weightErrorOf(maxAbs, errSq, refSq) };
}

export interface NMJob {
  kind: 'nm';
  values: Float32Array | FloatSource;
  dims: number[];
  axis: number;
  /** Kept of every `m` along the axis. */
  n: number;
  m: number;
}

export const NM_JOB: JobKind<NMJob, PruneResult> = {
  input: 'values',
  execute: (job) => pruneNM(job.values, job.dims, job.axis, job.n, job.m),
};
