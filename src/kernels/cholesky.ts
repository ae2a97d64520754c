// The inverse of a layer's Hessian H = XᵀX (damped) as the upper Cholesky factor U with UᵀU = H⁻¹:
// what GPTQ (quantize/) and SparseGPT (prune/) read row by row to spread one input feature's error
// over the features not yet visited.

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

/** U, upper triangular with UᵀU = H⁻¹ (H damped by `damp` × its mean diagonal). Undefined if H is singular. */
export function inverseCholeskyUpper(h: Float64Array, n: number, damp: number): Float64Array | undefined {
  const a = Float64Array.from(h);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += a[i * n + i]!;
  mean /= n;
  for (let i = 0; i < n; i++) {
    // A feature never seen in calibration gets unit curvature, so its weights are simply rounded.
    if (a[i * n + i] === 0) a[i * n + i] = 1;
    a[i * n + i]! += damp * (mean > 0 ? mean : 1);
  }
  if (!cholesky(a, n)) return undefined;
  // L⁻¹ by forward substitution, then H⁻¹ = L⁻ᵀ L⁻¹.
  const inv = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    for (let i = c; i < n; i++) {
      let v = i === c ? 1 : 0;
      for (let k = c; k < i; k++) v -= a[i * n + k]! * inv[k * n + c]!;
      inv[i * n + c] = v / a[i * n + i]!;
    }
  }
  const hinv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let v = 0;
      for (let k = i; k < n; k++) v += inv[k * n + i]! * inv[k * n + j]!;
      hinv[i * n + j] = v;
      hinv[j * n + i] = v;
    }
  }
  // Upper factor: the transpose of the lower Cholesky factor of H⁻¹.
  if (!cholesky(hinv, n)) return undefined;
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = hinv[i * n + j]!;
  return u;
}

/**
 * The same factor U (upper, UᵀU = H⁻¹, H damped as inverseCholeskyUpper does) computed with one
 * Cholesky factorization and one triangular inverse, in place in `h` (which it consumes): with P
 * the reversal of the features, PHP = LLᵀ gives U = P L⁻¹ P, and reversing both axes of a
 * row-major matrix is reversing its array. About a third of inverseCholeskyUpper's arithmetic and
 * one K×K array instead of four. Returns false if H is not positive definite after damping.
 */
export function inverseFactorInPlace(h: Float64Array, n: number, damp: number): boolean {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += h[i * n + i]!;
  mean /= n;
  for (let i = 0; i < n; i++) {
    if (h[i * n + i] === 0) h[i * n + i] = 1;
    h[i * n + i]! += damp * (mean > 0 ? mean : 1);
  }
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
