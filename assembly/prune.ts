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
