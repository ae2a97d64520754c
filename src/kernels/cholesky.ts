// The inverse of a layer's Hessian H = XᵀX (damped) as the upper Cholesky factor U with UᵀU = H⁻¹:
// what GPTQ (quantize/) and SparseGPT (prune/) read row by row to spread one input feature's error
// over the features not yet visited.
import type { JobKind } from './job.js';
import { simdKernels } from './simd.js';

/** In-place Cholesky factorization of a symmetric positive definite matrix (lower triangle, row-major). */
export function cholesky(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let k = 0; k < j; k++) d -= a[j * n + k]! * a[j * n + k]!;
    if (!(d > 0)) return false;
    const s = Math.sqrt(d);
    a[j * n + j] = s;
    for (let i = j + 1; i < n; i++) {
      let v = a[i * n + j]!;
      for (let k = 0; k < j; k++) v -= a[i * n + k]! * a[j * n + k]!;
      a[i * n + j] = v / s;
    }
    for (let k = j + 1; k < n; k++) a[j * n + k] = 0;
  }
  return true;
}

/**
 * U, upper triangular with UᵀU = H⁻¹ (H damped by `damp` × its mean diagonal; a feature never seen
 * in calibration gets unit curvature, so its weights are simply rounded), computed with one
 * Cholesky factorization and one triangular inverse, in place in `h` (which it consumes): with P
 * the reversal of the features, PHP = LLᵀ gives U = P L⁻¹ P, and reversing both axes of a
 * row-major matrix is reversing its array. Every loop runs along rows (assembly/cholesky.ts, two
 * values per instruction): the former way, L⁻¹ by columns and then L⁻ᵀL⁻¹ and a second
 * factorization, read K×K arrays down their columns and took 120 s of GPTQ's 134 s on BERT-base's
 * first layer; the same loops in JavaScript 26 s (bench/RESULTS.md, §"GPTQ and SparseGPT's
 * factor"). Returns false if H is not positive definite after damping.
 */
export function inverseFactorInPlace(h: Float64Array, n: number, damp: number): boolean {
  return simdKernels().inverseFactor(h, n, damp);
}

/** One inverseFactorInPlace on a kernel thread: GPTQ's plan factors its layers' H on every thread. */
export interface FactorJob {
  kind: 'factor';
  /** H's bytes (float64, [n, n], row-major); the job turns them into U in place. */
  matrix: Uint8Array;
  n: number;
  damp: number;
}

export const FACTOR_JOB: JobKind<FactorJob, { factor: Float64Array } | { singular: true }> = {
  input: 'matrix',
  execute: (job) => {
    const h = new Float64Array(job.matrix.buffer, job.matrix.byteOffset, job.n * job.n);
    return inverseFactorInPlace(h, job.n, job.damp) ? { factor: h } : { singular: true };
  },
};

/**
 * H's diagonal damped as the factor damps it, written to `into` (H itself by default): `damp` × the
 * mean diagonal added to each entry, a zero entry (a feature never seen in calibration) first set to 1.
 */
export function dampDiagonal(h: Float64Array, n: number, damp: number, into: Float64Array | Float32Array = h): void {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += h[i * n + i]!;
  mean /= n;
  const add = damp * (mean > 0 ? mean : 1);
  for (let i = 0; i < n; i++) {
    const d = h[i * n + i]!;
    into[i * n + i] = (d === 0 ? 1 : d) + add;
  }
}

/** The same in JavaScript, loop for loop: the kernel's reference in the tests. */
export function inverseFactorReference(h: Float64Array, n: number, damp: number): boolean {
  dampDiagonal(h, n, damp);
  h.reverse();
  if (!cholesky(h, n)) return false;
  // L⁻¹ row by row (each row a combination of the rows above), over L in place.
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    row.fill(0, 0, i + 1);
    row[i] = 1;
    for (let k = 0; k < i; k++) {
      const f = h[i * n + k]!;
      if (f === 0) continue;
      const base = k * n;
      for (let j = 0; j <= k; j++) row[j]! -= f * h[base + j]!;
    }
    const d = h[i * n + i]!;
    for (let j = 0; j <= i; j++) h[i * n + j] = row[j]! / d;
  }
  h.reverse();
  return true;
}
