// The inverse Hessian's upper factor GPTQ and SparseGPT read (src/kernels/cholesky.ts says what and
// why): a Cholesky factorization and a triangular inverse of a K×K float64 matrix, two values per
// instruction. Every loop runs along rows of the row-major matrix: dot products of two rows, and a
// row minus a multiple of another. In JavaScript the same loops ran at ~0.6 GFLOP/s.

/** Σ a[i]·b[i] over n float64 values. */
@inline
function dot(a: usize, b: usize, n: i32): f64 {
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 3;
    s0 = f64x2.add(s0, f64x2.mul(v128.load(a + o), v128.load(b + o)));
    s1 = f64x2.add(s1, f64x2.mul(v128.load(a + o, 16), v128.load(b + o, 16)));
  }
  const s = f64x2.add(s0, s1);
  let r = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < n; i++) r += load<f64>(a + (<usize>i << 3)) * load<f64>(b + (<usize>i << 3));
  return r;
}

/** y[i] −= f·x[i] over n float64 values. */
@inline
function subScaled(y: usize, x: usize, f: f64, n: i32): void {
  const fv = f64x2.splat(f);
  const n2 = n & ~1;
  let i = 0;
  for (; i < n2; i += 2) {
    const o = <usize>i << 3;
    v128.store(y + o, f64x2.sub(v128.load(y + o), f64x2.mul(fv, v128.load(x + o))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 3;
    store<f64>(y + o, load<f64>(y + o) - f * load<f64>(x + o));
  }
}

/** Reverses n float64 values in place. */
function reverse(a: usize, n: i32): void {
  for (let i = 0, j = n - 1; i < j; i++, j--) {
    const pi = a + (<usize>i << 3), pj = a + (<usize>j << 3);
    const t = load<f64>(pi);
    store<f64>(pi, load<f64>(pj));
    store<f64>(pj, t);
  }
}

/**
 * Lower Cholesky factor of the symmetric positive definite n×n matrix at `a` (row-major), in place,
 * the upper triangle zeroed. Returns 0 when a pivot is not positive.
 */
function choleskyLower(a: usize, n: i32): i32 {
  const rowBytes = <usize>n << 3;
  for (let j = 0; j < n; j++) {
    const rj = a + <usize>j * rowBytes;
    const d = load<f64>(rj + (<usize>j << 3)) - dot(rj, rj, j);
    if (!(d > 0)) return 0;
    const s = Math.sqrt(d);
    store<f64>(rj + (<usize>j << 3), s);
    for (let i = j + 1; i < n; i++) {
      const ri = a + <usize>i * rowBytes;
      const at = ri + (<usize>j << 3);
      store<f64>(at, (load<f64>(at) - dot(ri, rj, j)) / s);
    }
    memory.fill(rj + (<usize>(j + 1) << 3), 0, <usize>(n - j - 1) << 3);
  }
  return 1;
}

/**
 * The factor U (upper, UᵀU = H⁻¹) of the damped n×n matrix H at `h`, in place, as
 * src/kernels/cholesky.ts inverseFactorInPlace computes it: H's diagonal damped by `damp` × its mean
 * (a zero diagonal entry first set to 1), both axes reversed, L = chol, L⁻¹ row by row (each row a
 * combination of the rows above, using `row`: n float64 of scratch), both axes reversed again.
 * Returns 0 when H is not positive definite after damping.
 */
export function inverseFactor(h: usize, n: i32, damp: f64, row: usize): i32 {
  const rowBytes = <usize>n << 3;
  let mean: f64 = 0;
  for (let i = 0; i < n; i++) mean += load<f64>(h + <usize>i * rowBytes + (<usize>i << 3));
  mean /= n;
  const add = damp * (mean > 0 ? mean : 1);
  for (let i = 0; i < n; i++) {
    const at = h + <usize>i * rowBytes + (<usize>i << 3);
    const d = load<f64>(at);
    store<f64>(at, (d == 0 ? 1 : d) + add);
  }
  reverse(h, n * n);
  if (!choleskyLower(h, n)) return 0;
  for (let i = 0; i < n; i++) {
    const ri = h + <usize>i * rowBytes;
    memory.fill(row, 0, <usize>(i + 1) << 3);
    store<f64>(row + (<usize>i << 3), 1);
    for (let k = 0; k < i; k++) {
      const f = load<f64>(ri + (<usize>k << 3));
      if (f == 0) continue;
      subScaled(row, h + <usize>k * rowBytes, f, k + 1);
    }
    const d = load<f64>(ri + (<usize>i << 3));
    for (let j = 0; j <= i; j++) store<f64>(ri + (<usize>j << 3), load<f64>(row + (<usize>j << 3)) / d);
  }
  reverse(h, n * n);
  return 1;
}

/**
 * The sweeps' compensation (GPTQ, SparseGPT): rows first … first + count − 1 of W (n float64 each, at
 * `w`) each minus coeffs[j] times the row `e`. The same products and differences as the JavaScript
 * loop, in the same order: the same bits.
 */
export function subScaledRows(w: usize, n: i32, first: i32, count: i32, coeffs: usize, e: usize): void {
  const rowBytes = <usize>n << 3;
  for (let j = 0; j < count; j++) {
    const f = load<f64>(coeffs + (<usize>j << 3));
    if (f == 0) continue;
    subScaled(w + <usize>(first + j) * rowBytes, e, f, n);
  }
}

/**
 * SparseGPT's lazy update: rows from … to − 1 of W each minus Σ over the block's features rb (b0 …
 * b1 − 1, in order) of U[rb, row] times error row rb − b0 (at `err`). U is k×k at `u`.
 */
export function blockUpdate(w: usize, n: i32, from: i32, to: i32, u: usize, k: i32, b0: i32, b1: i32, err: usize): void {
  const rowBytes = <usize>n << 3;
  for (let r2 = from; r2 < to; r2++) {
    const row = w + <usize>r2 * rowBytes;
    for (let rb = b0; rb < b1; rb++) {
      const f = load<f64>(u + ((<usize>rb * <usize>k + <usize>r2) << 3));
      if (f == 0) continue;
      subScaled(row, err + <usize>(rb - b0) * rowBytes, f, n);
    }
  }
}

/**
 * out = H·P for the least-squares refit (src/kernels/refit.ts): H k×k symmetric, P and out k×n, all
 * row-major float32. Column strips of 32 are done one at a time over every row of out, so the strip of
 * P (k × 128 bytes, packed at `pack`) stays in cache while H's rows stream past; eight four-lane sums
 * per row.
 */
export function symMul32(out: usize, h: usize, p: usize, k: i32, n: i32, pack: usize): void {
  const rowBytes = <usize>n << 2;
  const n32 = n & ~31;
  for (let c0 = 0; c0 < n32; c0 += 32) {
    // The strip packed contiguously: read in place, rows n·4 bytes apart (a multiple of 4096 for
    // BERT's 3072 outputs) fall into the same few cache sets, and the product ran 2–3× slower.
    for (let j = 0; j < k; j++) memory.copy(pack + (<usize>j << 7), p + <usize>j * rowBytes + (<usize>c0 << 2), 128);
    const strip = pack;
    for (let i = 0; i < k; i++) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let s4 = f32x4.splat(0), s5 = f32x4.splat(0), s6 = f32x4.splat(0), s7 = f32x4.splat(0);
      const hi = h + ((<usize>i * <usize>k) << 2);
      for (let j = 0; j < k; j++) {
        const f = v128.load32_splat(hi + (<usize>j << 2));
        const pj = strip + (<usize>j << 7);
        s0 = f32x4.add(s0, f32x4.mul(f, v128.load(pj)));
        s1 = f32x4.add(s1, f32x4.mul(f, v128.load(pj, 16)));
        s2 = f32x4.add(s2, f32x4.mul(f, v128.load(pj, 32)));
        s3 = f32x4.add(s3, f32x4.mul(f, v128.load(pj, 48)));
        s4 = f32x4.add(s4, f32x4.mul(f, v128.load(pj, 64)));
        s5 = f32x4.add(s5, f32x4.mul(f, v128.load(pj, 80)));
        s6 = f32x4.add(s6, f32x4.mul(f, v128.load(pj, 96)));
        s7 = f32x4.add(s7, f32x4.mul(f, v128.load(pj, 112)));
      }
      const o = out + <usize>i * rowBytes + (<usize>c0 << 2);
      v128.store(o, s0);
      v128.store(o, s1, 16);
      v128.store(o, s2, 32);
      v128.store(o, s3, 48);
      v128.store(o, s4, 64);
      v128.store(o, s5, 80);
      v128.store(o, s6, 96);
      v128.store(o, s7, 112);
    }
  }
  // The last n mod 32 columns, one value at a time.
  for (let i = 0; i < k; i++) {
    const hi = h + ((<usize>i * <usize>k) << 2);
    for (let c = n32; c < n; c++) {
      let s: f32 = 0;
      for (let j = 0; j < k; j++) s += load<f32>(hi + (<usize>j << 2)) * load<f32>(p + <usize>j * rowBytes + (<usize>c << 2));
      store<f32>(out + <usize>i * rowBytes + (<usize>c << 2), s);
    }
  }
}
