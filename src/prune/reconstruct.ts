// Reconstruction of a layer whose input features were removed, from its calibration statistics:
// `bias` adds the removed features' mean contribution to the bias (FLAP, An et al. 2024); `lstsq`
// solves for the weights on the kept features and the bias that best reproduce the layer's original
// output on the calibration inputs (He et al. 2017), with ridge damping towards the weights it had:
//   [W'; b'] = argmin ‖[X_k 1][W'; b'] − [X 1][W; b]‖² + λ‖W' − W_k‖²,  λ = damp · mean(diag X_kᵀX_k),
// whose normal equations need only XᵀX, ΣX and the row count. Damping towards W_k rather than zero
// keeps what calibration cannot see (features it never excites, more features than samples) as it
// was, and a large damp gives back the bias-only compensation.
import { cholesky } from '../kernels/cholesky.js';
import type { SinkStats } from './sink-stats.js';

/** A sink's weight as output rows × input features (× `spread` entries each), over its stored layout. */
export interface WeightLayout {
  outputs: number;
  features: number;
  spread: number;
  /** Features on axis 0 ([K, N]: MatMul, Gemm without transB), else on axis 1 ([N, K, …]). */
  featuresFirst: boolean;
}

export function entryIndex(l: WeightLayout, o: number, f: number, t = 0): number {
  return l.featuresFirst ? f * l.outputs + o : (o * l.features + f) * l.spread + t;
}

export type Reconstruction = 'none' | 'bias' | 'lstsq';

export interface Rebuilt {
  weights: Float32Array;
  bias: Float32Array;
  /** The layer's relative RMS output error on the calibration inputs, uncompensated and as rebuilt (when XᵀX was collected). */
  errorNone?: number;
  error?: number;
  /** Set when lstsq could not be solved and `bias` was used instead. */
  fellBack?: string;
}

/** xᵀ H_aug x for x = [a (k features); c (intercept)], H_aug = [[XᵀX, ΣX], [ΣXᵀ, rows]]. */
function quadratic(stats: SinkStats, a: Float64Array, c: number): number {
  const { k, gram, sum, rows } = stats;
  let q = 0,
    s = 0;
  for (let i = 0; i < k; i++) {
    const ai = a[i]!;
    if (ai === 0) continue;
    const gi = i * k;
    let v = 0;
    for (let j = 0; j < k; j++) v += gram![gi + j]! * a[j]!;
    q += ai * v;
    s += ai * sum[i]!;
  }
  return q + 2 * c * s + rows * c * c;
}

function column(l: WeightLayout, w: Float32Array, o: number): Float64Array {
  const col = new Float64Array(l.features);
  for (let f = 0; f < l.features; f++) col[f] = w[entryIndex(l, o, f)]!;
  return col;
}

/** The relative output error of replacing [W; b] by [W'; b'] (W' zero on removed features), from XᵀX. */
function outputError(stats: SinkStats, l: WeightLayout, w: Float32Array, b: Float32Array, w2: Float32Array, b2: Float32Array): number {
  let err = 0,
    ref = 0;
  for (let o = 0; o < l.outputs; o++) {
    const a = column(l, w, o);
    const a2 = column(l, w2, o);
    ref += quadratic(stats, a, b[o]!);
    for (let f = 0; f < l.features; f++) a2[f] = a[f]! - a2[f]!;
    err += quadratic(stats, a2, b[o]! - b2[o]!);
  }
  return ref > 0 ? Math.sqrt(Math.max(0, err) / ref) : 0;
}

/** Solves L Lᵀ x = rhs in place (L lower, row-major n × n). */
function solveCholesky(l: Float64Array, n: number, rhs: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let v = rhs[i]!;
    for (let j = 0; j < i; j++) v -= l[i * n + j]! * rhs[j]!;
    rhs[i] = v / l[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let v = rhs[i]!;
    for (let j = i + 1; j < n; j++) v -= l[j * n + i]! * rhs[j]!;
    rhs[i] = v / l[i * n + i]!;
  }
}

/**
 * The sink's weights and bias after its `removed` input features go (entries of removed features are
 * zeroed here; the slicing that follows drops them).
 */
export function rebuild(
  stats: SinkStats,
  l: WeightLayout,
  weights: Float32Array,
  bias: Float32Array,
  removed: boolean[],
  mode: Reconstruction,
  damp: number,
): Rebuilt {
  const w2 = Float32Array.from(weights);
  const b2 = Float32Array.from(bias);
  const mean = (f: number) => (stats.rows > 0 ? stats.sum[f]! / stats.rows : 0);
  let fellBack: string | undefined;
  let solved = false;
  if (mode === 'lstsq') {
    if (!stats.gram) fellBack = `XᵀX was not collected (${l.features} features)`;
    else solved = leastSquares(stats, l, weights, bias, removed, damp, w2, b2);
    if (stats.gram && !solved) fellBack = 'the damped normal equations are singular';
  }
  if (!solved && mode !== 'none') {
    for (let o = 0; o < l.outputs; o++) {
      let add = 0;
      for (let f = 0; f < l.features; f++)
        if (removed[f]) for (let t = 0; t < l.spread; t++) add += weights[entryIndex(l, o, f, t)]! * mean(f);
      b2[o] = bias[o]! + add;
    }
  }
  for (let o = 0; o < l.outputs; o++)
    for (let f = 0; f < l.features; f++) if (removed[f]) for (let t = 0; t < l.spread; t++) w2[entryIndex(l, o, f, t)] = 0;
  const result: Rebuilt = { weights: w2, bias: b2, fellBack };
  if (stats.gram && l.spread === 1) {
    const w0 = Float32Array.from(weights);
    for (let o = 0; o < l.outputs; o++) for (let f = 0; f < l.features; f++) if (removed[f]) w0[entryIndex(l, o, f)] = 0;
    result.errorNone = outputError(stats, l, weights, bias, w0, bias);
    result.error = outputError(stats, l, weights, bias, w2, b2);
  }
  return result;
}

function leastSquares(
  stats: SinkStats,
  l: WeightLayout,
  weights: Float32Array,
  bias: Float32Array,
  removed: boolean[],
  damp: number,
  w2: Float32Array,
  b2: Float32Array,
): boolean {
  const { k, gram, sum, rows } = stats;
  const g = gram!;
  const kept: number[] = [];
  for (let f = 0; f < k; f++) if (!removed[f]) kept.push(f);
  const m = kept.length;
  const n = m + 1;
  const a = new Float64Array(n * n);
  let diag = 0;
  for (const f of kept) diag += g[f * k + f]!;
  const lambda = damp * (diag > 0 ? diag / m : 1);
  for (let i = 0; i < m; i++) {
    const gi = kept[i]! * k;
    for (let j = 0; j < m; j++) a[i * n + j] = g[gi + kept[j]!]!;
    a[i * n + i]! += lambda;
    a[i * n + m] = sum[kept[i]!]!;
    a[m * n + i] = sum[kept[i]!]!;
  }
  a[m * n + m] = rows;
  if (!cholesky(a, n)) return false;
  const rhs = new Float64Array(n);
  for (let o = 0; o < l.outputs; o++) {
    const w = column(l, weights, o);
    const b = bias[o]!;
    for (let i = 0; i < m; i++) {
      const gi = kept[i]! * k;
      let v = sum[kept[i]!]! * b + lambda * w[kept[i]!]!;
      for (let f = 0; f < k; f++) v += g[gi + f]! * w[f]!;
      rhs[i] = v;
    }
    let last = rows * b;
    for (let f = 0; f < k; f++) last += sum[f]! * w[f]!;
    rhs[m] = last;
    solveCholesky(a, n, rhs);
    for (let i = 0; i < m; i++) w2[entryIndex(l, o, kept[i]!)] = rhs[i]!;
    b2[o] = rhs[m]!;
  }
  return true;
}
