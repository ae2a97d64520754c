// k-means on the values of one tensor (or one channel): scalars, so the clusters are intervals of
// the sorted values. With prefix sums over the sorted values, a Lloyd iteration costs O(k log n)
// instead of O(n k): boundaries are midpoints between neighbouring centroids, found by binary
// search, and each new centroid is an interval's mean. Two starts are tried — quantiles of the
// distinct values, and k-means++ seeded from the pass's seed — and the one with less squared error
// wins, so the result depends only on the values, k and the seed.
import { part, PROGRESS_CHUNK, type JobProgress } from './progress.js';
import { simdFits, simdKernels } from './simd.js';
import { weightErrorOf, type WeightError } from './weight-error.js';
import { seededRandom } from './random.js';
import { readInChunks, type JobKind } from './job.js';
import type { FloatSource } from '../ir/tensor.js';

export interface KMeansOptions {
  k: number;
  seed: number;
  /** Lloyd iterations at most (it stops earlier when the centroids no longer move). */
  maxIterations: number;
  /** Keep a centroid at exactly 0 (when the values hold zeros), so pruned weights stay zero. */
  keepZero: boolean;
}

export interface KMeansResult {
  /** The centroids used, ascending, as float32. */
  centroids: Float32Array;
  /** For each value, the index of its centroid (the nearest). */
  codes: Uint8Array;
  /** Lloyd iterations of the winning start. */
  iterations: number;
}

/** First index whose value is ≥ x (sorted ascending). */
function lowerBound(sorted: Float32Array, x: number, lo = 0, hi = sorted.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function distinctOf(sorted: Float32Array, limit = sorted.length): Float32Array | undefined {
  const out = new Float32Array(Math.min(sorted.length, limit + 1));
  let n = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (i > 0 && sorted[i] === sorted[i - 1]) continue;
    if (n === limit) return undefined;
    out[n++] = sorted[i]!;
  }
  return out.subarray(0, n);
}

/** Values beyond this many are fitted on evenly spaced order statistics: memory stays bounded, and in one dimension they describe the distribution. */
const FIT_LIMIT = 1 << 20;

function orderStatistics(sorted: Float32Array, count: number): Float32Array {
  if (sorted.length <= count) return sorted;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = sorted[Math.floor(((i + 0.5) * sorted.length) / count)]!;
  return out;
}

/** Spreads `k` starting centroids over the distinct values by rank. */
function quantileStart(distinct: Float32Array, k: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < k; j++) out.push(distinct[Math.min(distinct.length - 1, Math.floor(((j + 0.5) * distinct.length) / k))]!);
  return out;
}

/** k-means++ on a seeded sample: each next centroid drawn with probability ∝ squared distance to the nearest one so far. */
function plusPlusStart(sorted: Float32Array, k: number, seed: number): number[] {
  const random = seededRandom(seed);
  const size = Math.min(sorted.length, 8192);
  const sample = new Float64Array(size);
  for (let i = 0; i < size; i++) sample[i] = sorted[size === sorted.length ? i : Math.floor(random() * sorted.length)]!;
  const nearest = new Float64Array(size).fill(Infinity);
  const chosen: number[] = [];
  let next = sample[Math.floor(random() * size)]!;
  while (chosen.length < k) {
    chosen.push(next);
    let total = 0;
    for (let i = 0; i < size; i++) {
      const d = (sample[i]! - next) ** 2;
      if (d < nearest[i]!) nearest[i] = d;
      total += nearest[i]!;
    }
    if (total === 0) break;
    let target = random() * total,
      i = 0;
    for (; i < size - 1; i++) {
      target -= nearest[i]!;
      if (target < 0 && nearest[i]! > 0) break;
    }
    next = sample[i]!;
  }
  return chosen;
}

/** Sorted distinct starting centroids, topped up from the distinct values to k, with 0 pinned when asked. */
function prepare(start: number[], distinct: Float32Array, k: number, keepZero: boolean): Float64Array {
  const set = new Set(start);
  if (keepZero && !set.has(0)) {
    // The centroid nearest 0 becomes 0: it would have taken the zeros anyway.
    let nearest = start[0]!;
    for (const c of start) if (Math.abs(c) < Math.abs(nearest)) nearest = c;
    set.delete(nearest);
    set.add(0);
  }
  for (const v of quantileStart(distinct, k)) {
    if (set.size >= k) break;
    set.add(v);
  }
  for (let i = 0; set.size < k && i < distinct.length; i++) set.add(distinct[i]!);
  return Float64Array.from([...set].sort((a, b) => a - b));
}

interface Run {
  centroids: Float64Array;
  sse: number;
  iterations: number;
}

function lloyd(
  sorted: Float32Array,
  s1: Float64Array,
  s2: Float64Array,
  start: Float64Array,
  keepZero: boolean,
  maxIterations: number,
): Run {
  const c = Float64Array.from(start);
  const k = c.length;
  const pinned = keepZero ? c.indexOf(0) : -1;
  const edges = new Int32Array(k + 1);
  edges[k] = sorted.length;
  const split = () => {
    for (let j = 1; j < k; j++) edges[j] = lowerBound(sorted, (c[j - 1]! + c[j]!) / 2, edges[j - 1]);
  };
  let iterations = 0;
  while (iterations < maxIterations) {
    split();
    let moved = false;
    for (let j = 0; j < k; j++) {
      const lo = edges[j]!,
        hi = edges[j + 1]!;
      if (j === pinned || hi === lo) continue; // an empty interval keeps its centroid
      const mean = (s1[hi]! - s1[lo]!) / (hi - lo);
      if (mean !== c[j]) {
        c[j] = mean;
        moved = true;
      }
    }
    iterations++;
    if (!moved) break;
  }
  split();
  let sse = 0;
  for (let j = 0; j < k; j++) {
    const lo = edges[j]!,
      hi = edges[j + 1]!;
    const cj = Math.fround(c[j]!);
    sse += s2[hi]! - s2[lo]! - 2 * cj * (s1[hi]! - s1[lo]!) + (hi - lo) * cj * cj;
  }
  return { centroids: c, sse, iterations };
}

/** Each value's nearest centroid (centroids ascending; ties go to the larger), a chunk at a time for `progress`. */
function assign(values: Float32Array, centroids: Float32Array, progress?: JobProgress): Uint8Array {
  const bounds = new Float64Array(Math.max(0, centroids.length - 1));
  for (let j = 0; j < bounds.length; j++) bounds[j] = (centroids[j]! + centroids[j + 1]!) / 2;
  const codes = new Uint8Array(values.length);
  for (let lo = 0; lo < values.length; lo += PROGRESS_CHUNK) {
    const hi = Math.min(values.length, lo + PROGRESS_CHUNK);
    assignRange(values.subarray(lo, hi), bounds, codes.subarray(lo, hi));
    progress?.(hi / values.length);
  }
  return codes;
}

function assignRange(values: Float32Array, bounds: Float64Array, codes: Uint8Array): void {
  // The same search in the kernels, without branches: this one mispredicts on random weights
  // (bench/RESULTS.md, §"Pruning and clustering passes, BERT-base").
  if (simdFits(values.length)) {
    codes.set(simdKernels().countBoundsBelow(values, bounds));
    return;
  }
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    let lo = 0,
      hi = bounds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bounds[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    codes[i] = lo;
  }
}

/** Drops centroids no value uses and renumbers the codes. */
function compact(centroids: Float32Array, codes: Uint8Array): { centroids: Float32Array; codes: Uint8Array } {
  const used = new Uint8Array(centroids.length);
  for (let i = 0; i < codes.length; i++) used[codes[i]!] = 1;
  if (used.every((u) => u === 1)) return { centroids, codes };
  const renumber = new Uint8Array(centroids.length);
  const kept: number[] = [];
  centroids.forEach((c, j) => {
    if (used[j]) {
      renumber[j] = kept.length;
      kept.push(c);
    }
  });
  for (let i = 0; i < codes.length; i++) codes[i] = renumber[codes[i]!]!;
  return { centroids: Float32Array.from(kept), codes };
}

/**
 * Clusters `values` (finite) into at most k ≤ 256 centroids. `progress` is told the fraction done:
 * the sort is most of the time, then the fit, then the codes (bench/RESULTS.md, §"Figures moved
 * from source comments").
 */
export function kmeans1d(values: Float32Array, options: KMeansOptions, progress?: JobProgress): KMeansResult {
  const k = Math.min(options.k, 256);
  // A radix sort in the kernels (TypedArray sort was the slow part of clustering BERT-sized matrices:
  // bench/RESULTS.md, §"Pruning and clustering passes, BERT-base").
  const all = simdFits(values.length * 2) ? simdKernels().sorted(values, part(progress, 0, 0.65)) : values.slice().sort();
  const few = distinctOf(all, k);
  if (few) {
    // Every value is a centroid: nothing is lost.
    return { centroids: few, codes: assign(values, few, part(progress, 0.8, 1)), iterations: 0 };
  }
  const keepZero = options.keepZero && all[lowerBound(all, 0)] === 0;
  const sorted = orderStatistics(all, FIT_LIMIT);
  const distinct = distinctOf(sorted)!;
  const s1 = new Float64Array(sorted.length + 1),
    s2 = new Float64Array(sorted.length + 1);
  for (let i = 0; i < sorted.length; i++) {
    const x = sorted[i]!;
    s1[i + 1] = s1[i]! + x;
    s2[i + 1] = s2[i]! + x * x;
  }
  progress?.(0.7);
  let best: Run | undefined;
  for (const [i, start] of [quantileStart(distinct, k), plusPlusStart(sorted, k, options.seed)].entries()) {
    const run = lloyd(sorted, s1, s2, prepare(start, distinct, k, keepZero), keepZero, options.maxIterations);
    if (!best || run.sse < best.sse) best = run;
    progress?.(0.7 + 0.05 * (i + 1));
  }
  const centroids = Float32Array.from(best!.centroids);
  const { centroids: used, codes } = compact(centroids, assign(values, centroids, part(progress, 0.8, 1)));
  return { centroids: used, codes, iterations: best!.iterations };
}

export interface ClusterResult {
  codebooks: Float32Array[];
  codes: Uint8Array;
  iterations: number;
  /** The values were not all finite: nothing was clustered. */
  nonFinite?: boolean;
  /** The reconstruction's error against the values, as weightError gives it. */
  error?: WeightError;
  /** The fraction of the reconstruction that is zero. */
  sparsity?: number;
}

/**
 * What reconstructing every value from its codebook (the channel's, along `axis`) gives, measured
 * against the values: the same sums, in the same order, as weightError and sparsity over a
 * reconstructed copy, without making one (the pass did that on the main thread, after reading the
 * values from the file again: a large part of BERT-base's k=16 time; bench/RESULTS.md, §"Figures
 * moved from source comments").
 */
function reconstructionError(
  values: Float32Array,
  dims: number[],
  axis: number | undefined,
  codebooks: Float32Array[],
  codes: Uint8Array,
  progress?: JobProgress,
): { error: WeightError; sparsity: number } {
  const channels = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? values.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = values.length / Math.max(1, channels * inner);
  let maxAbs = 0,
    errSq = 0,
    refSq = 0,
    zeros = 0,
    at = 0,
    told = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const book = codebooks[c]!;
      // In chunks only to report progress: the sums run in the same order.
      for (let from = 0; from < inner; from += PROGRESS_CHUNK) {
        const end = Math.min(inner, from + PROGRESS_CHUNK);
        for (let i = from; i < end; i++, at++) {
          const x = values[at]!,
            y = book[codes[at]!]!,
            d = Math.abs(x - y);
          if (d > maxAbs) maxAbs = d;
          errSq += d * d;
          refSq += x * x;
          if (y === 0) zeros++;
        }
        if (progress && at - told >= PROGRESS_CHUNK) {
          told = at;
          progress(at / values.length);
        }
      }
    }
  }
  return { error: weightErrorOf(maxAbs, errSq, refSq), sparsity: values.length ? zeros / values.length : 0 };
}

/** Whether every value is finite (k-means needs it), without a callback per value. */
export function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return false;
  return true;
}

/**
 * k-means codebooks and codes of a tensor: one codebook, or one per index along `axis`; `progress`
 * is told the fraction done (the error measured at the end is the last tenth).
 */
export function clusterValues(
  values: Float32Array,
  dims: number[],
  axis: number | undefined,
  options: KMeansOptions,
  progress?: JobProgress,
): ClusterResult {
  if (!allFinite(values)) return { codebooks: [], codes: new Uint8Array(0), iterations: 0, nonFinite: true };
  const measured = part(progress, 0.9, 1);
  if (axis === undefined) {
    const r = kmeans1d(values, options, part(progress, 0, 0.9));
    return {
      codebooks: [r.centroids],
      codes: r.codes,
      iterations: r.iterations,
      ...reconstructionError(values, dims, axis, [r.centroids], r.codes, measured),
    };
  }
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const codes = new Uint8Array(values.length);
  const codebooks: Float32Array[] = [];
  const scratch = new Float32Array(outer * inner);
  let iterations = 0;
  for (let c = 0; c < channels; c++) {
    const at = (o: number, i: number) => (o * channels + c) * inner + i;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) scratch[o * inner + i] = values[at(o, i)]!;
    const r = kmeans1d(scratch, options);
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) codes[at(o, i)] = r.codes[o * inner + i]!;
    codebooks.push(r.centroids);
    iterations = Math.max(iterations, r.iterations);
    progress?.((0.9 * (c + 1)) / channels);
  }
  return { codebooks, codes, iterations, ...reconstructionError(values, dims, axis, codebooks, codes, measured) };
}

export interface ClusterJob {
  kind: 'cluster';
  values: Float32Array | FloatSource;
  dims: number[];
  axis: number | undefined;
  options: KMeansOptions;
}

export const CLUSTER_JOB: JobKind<ClusterJob, ClusterResult> = {
  input: 'values',
  execute(job, progress) {
    // Reading is about a tenth of clustering a tensor from a file (bench/RESULTS.md, §"Figures moved
    // from source comments").
    const inFile = !(job.values instanceof Float32Array);
    const values = readInChunks(job.values, part(progress, 0, 0.1));
    return clusterValues(values, job.dims, job.axis, job.options, part(progress, inFile ? 0.1 : 0, 1));
  },
};
