// Magnitude pruning kernels. The k-th smallest |w| is found by radix selection over float32 bit
// patterns (with the sign bit cleared, non-negative floats order as their bits do): a histogram of
// 11 bits at a time narrows the range three times, where quickselect's comparisons mispredict on
// random weights (10–16 ns per weight in JavaScript).

const MAGNITUDE: u32 = 0x7fffffff;

/**
 * Adds to `hist` (u32 counters) the digit (|x| bits >> shift) & digitMask of each of the n values at
 * `src` whose |x| bits, under prefixMask, equal `prefix`.
 */
export function magnitudeHistogram(src: usize, n: i32, shift: u32, digitMask: u32, prefixMask: u32, prefix: u32, hist: usize): void {
  for (let i = 0; i < n; i++) {
    const bits = load<u32>(src + (<usize>i << 2)) & MAGNITUDE;
    if ((bits & prefixMask) == prefix) {
      const at = hist + (<usize>((bits >> shift) & digitMask) << 2);
      store<u32>(at, load<u32>(at) + 1);
    }
  }
}

/**
 * Zeroes the values at `src` whose |x| bits are below `threshold`, then the first `ties` whose bits
 * equal it (ties go by position, so the result is deterministic). Returns how many values are zero
 * afterwards.
 */
export function pruneBelow(src: usize, n: i32, threshold: u32, ties: i32): i32 {
  const t = i32x4.splat(threshold), m = i32x4.splat(MAGNITUDE), zero = i32x4.splat(0);
  const n4 = n & ~3;
  let nz = i32x4.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const p = src + (<usize>i << 2);
    const v = v128.load(p);
    const kept = v128.andnot(v, i32x4.lt_u(v128.and(v, m), t));
    v128.store(p, kept);
    nz = i32x4.sub(nz, i32x4.eq(v128.and(kept, m), zero));
  }
  let zeros = i32x4.extract_lane(nz, 0) + i32x4.extract_lane(nz, 1) + i32x4.extract_lane(nz, 2) + i32x4.extract_lane(nz, 3);
  for (let i = n4; i < n; i++) {
    const p = src + (<usize>i << 2);
    if ((load<u32>(p) & MAGNITUDE) < threshold) store<u32>(p, 0);
    if ((load<u32>(p) & MAGNITUDE) == 0) zeros++;
  }
  // (With a threshold of 0, the ties are zeros already, and counted; −0 becomes +0.)
  for (let i = 0; i < n && ties > 0; i++) {
    const p = src + (<usize>i << 2);
    if ((load<u32>(p) & MAGNITUDE) == threshold) {
      store<u32>(p, 0);
      ties--;
      if (threshold != 0) zeros++;
    }
  }
  return zeros;
}

/** acc + the squares of v's four float32 lanes, summed in float64 (two lanes a side). */
@inline
function addSquares(acc: v128, v: v128): v128 {
  const lo = f64x2.promote_low_f32x4(v), hi = f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f64x2.add(f64x2.add(acc, f64x2.mul(lo, lo)), f64x2.mul(hi, hi));
}

@inline
function sum2(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/**
 * The error pruneBelow(src, n, threshold, ties) will make, before it makes it: into out (f64 × 3),
 * Σ x² over all values, Σ x² over those it zeroes, and the largest |x| it zeroes. Sums in float64,
 * two lanes at a time, so that they match what the report computed in JavaScript to ~1e-15.
 */
export function pruneError(src: usize, n: i32, threshold: u32, ties: i32, out: usize): void {
  const t = i32x4.splat(threshold), m = i32x4.splat(MAGNITUDE);
  const n4 = n & ~3;
  let ref = f64x2.splat(0), err = f64x2.splat(0);
  let worst = i32x4.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const v = v128.load(src + (<usize>i << 2));
    const bits = v128.and(v, m);
    const gone = i32x4.lt_u(bits, t);
    ref = addSquares(ref, v);
    err = addSquares(err, v128.and(v, gone));
    worst = i32x4.max_u(worst, v128.and(bits, gone));
  }
  let refSq = sum2(ref);
  let errSq = sum2(err);
  let worstBits = max(max(i32x4.extract_lane(worst, 0) as u32, i32x4.extract_lane(worst, 1) as u32), max(i32x4.extract_lane(worst, 2) as u32, i32x4.extract_lane(worst, 3) as u32));
  for (let i = n4; i < n; i++) {
    const bits = load<u32>(src + (<usize>i << 2)) & MAGNITUDE;
    const x = <f64>load<f32>(src + (<usize>i << 2));
    refSq += x * x;
    if (bits < threshold) { errSq += x * x; worstBits = max(worstBits, bits); }
  }
  // The tied values zeroed have |x| = the threshold exactly.
  if (ties > 0 && threshold != 0) {
    const x = <f64>reinterpret<f32>(threshold);
    errSq += <f64>ties * x * x;
    worstBits = max(worstBits, threshold);
  }
  store<f64>(out, refSq);
  store<f64>(out + 8, errSq);
  store<f64>(out + 16, <f64>reinterpret<f32>(worstBits));
}

/**
 * N:M selection on `rows` rows of length `inner` at `src` (float32, in place): in each of the
 * `rows / m` blocks of m rows, column by column, the n largest magnitudes stay and the others
 * become 0. A value's rank is how many of its group are smaller, or equal and later (so ties keep
 * the earlier); those ranked below m − n go. Four columns at a time through the lanes; columns
 * past the last four one by one, by the same rule. Adds to out (f64 × 4): Σ x² over all values,
 * Σ x² over those zeroed, the largest |x| zeroed (kept as the largest so far), and the count of
 * zeros afterwards. `scratch` holds m vectors.
 */
export function nmRows(src: usize, rows: i32, inner: i32, n: i32, m: i32, scratch: usize, out: usize): void {
  const drop = m - n;
  const mag = i32x4.splat(MAGNITUDE);
  const inner4 = inner & ~3;
  let ref = f64x2.splat(0), err = f64x2.splat(0);
  let worst = i32x4.splat(0), nz = i32x4.splat(0);
  const rowBytes = <usize>inner << 2;
  for (let r0 = 0; r0 < rows; r0 += m) {
    const block = src + <usize>r0 * rowBytes;
    for (let c = 0; c < inner4; c += 4) {
      const at = block + (<usize>c << 2);
      for (let j = 0; j < m; j++) v128.store(scratch + (<usize>j << 4), v128.and(v128.load(at + <usize>j * rowBytes), mag));
      for (let j = 0; j < m; j++) {
        const aj = v128.load(scratch + (<usize>j << 4));
        // Lanes count down from 0 (a true comparison is −1).
        let rank = i32x4.splat(0);
        for (let k = 0; k < j; k++) rank = i32x4.add(rank, i32x4.lt_u(v128.load(scratch + (<usize>k << 4)), aj));
        for (let k = j + 1; k < m; k++) rank = i32x4.add(rank, i32x4.le_u(v128.load(scratch + (<usize>k << 4)), aj));
        const gone = i32x4.gt_s(rank, i32x4.splat(-drop));
        const p = at + <usize>j * rowBytes;
        const v = v128.load(p);
        const kept = v128.andnot(v, gone);
        v128.store(p, kept);
        ref = addSquares(ref, v);
        err = addSquares(err, v128.and(v, gone));
        worst = i32x4.max_u(worst, v128.and(aj, gone));
        nz = i32x4.sub(nz, i32x4.eq(v128.and(kept, mag), i32x4.splat(0)));
      }
    }
    for (let c = inner4; c < inner; c++) {
      const at = block + (<usize>c << 2);
      for (let j = 0; j < m; j++) store<u32>(scratch + (<usize>j << 2), load<u32>(at + <usize>j * rowBytes) & MAGNITUDE);
      for (let j = 0; j < m; j++) {
        const aj = load<u32>(scratch + (<usize>j << 2));
        let rank = 0;
        for (let k = 0; k < j; k++) if (load<u32>(scratch + (<usize>k << 2)) < aj) rank++;
        for (let k = j + 1; k < m; k++) if (load<u32>(scratch + (<usize>k << 2)) <= aj) rank++;
        const p = at + <usize>j * rowBytes;
        const x = <f64>load<f32>(p);
        store<f64>(out, load<f64>(out) + x * x);
        if (rank < drop) {
          store<f32>(p, 0);
          store<f64>(out + 8, load<f64>(out + 8) + x * x);
          store<f64>(out + 16, max(load<f64>(out + 16), <f64>reinterpret<f32>(aj)));
          store<f64>(out + 24, load<f64>(out + 24) + 1);
        } else if (aj == 0) store<f64>(out + 24, load<f64>(out + 24) + 1);
      }
    }
  }
  store<f64>(out, load<f64>(out) + sum2(ref));
  store<f64>(out + 8, load<f64>(out + 8) + sum2(err));
  const w = max(max(i32x4.extract_lane(worst, 0) as u32, i32x4.extract_lane(worst, 1) as u32), max(i32x4.extract_lane(worst, 2) as u32, i32x4.extract_lane(worst, 3) as u32));
  store<f64>(out + 16, max(load<f64>(out + 16), <f64>reinterpret<f32>(w)));
  store<f64>(out + 24, load<f64>(out + 24) + <f64>(i32x4.extract_lane(nz, 0) + i32x4.extract_lane(nz, 1) + i32x4.extract_lane(nz, 2) + i32x4.extract_lane(nz, 3)));
}
