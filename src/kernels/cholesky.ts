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
