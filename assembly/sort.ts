// Sorting float32 values (k-means works on sorted values): an LSD radix sort over an
// order-preserving transform of the bits, four passes of 8 bits. TypedArray.prototype.sort took
// ~107 ns per value on BERT-sized weight matrices.

/** Bits of a float as an unsigned key in the float's order (−0 before +0, as TypedArray sort puts them). */
@inline
function key(bits: u32): u32 {
  return bits ^ (<u32>(<i32>bits >> 31) | 0x80000000);
}

@inline
function unkey(k: u32): u32 {
  return k ^ (<u32>(<i32>~k >> 31) | 0x80000000);
}

/**
 * Sorts the n float32 at `src` ascending; `tmp` holds n more, `hist` 4 × 256 counters (u32).
 * The steps below do the same over ranges of values, so that the caller can report progress between them.
 */
export function sortFloats(src: usize, tmp: usize, n: i32, hist: usize): void {
  memory.fill(hist, 0, 4 * 256 * 4);
  sortKeys(src, 0, n, hist);
  let from = src, to = tmp;
  for (let b: u32 = 0; b < 4; b++) {
    if (!sortOffsets(from, n, hist, b)) continue;
    sortScatter(from, to, 0, n, hist, b);
    const t = from; from = to; to = t;
  }
  sortUnkeys(from, src, 0, n);
}

/** Sort step 1: the floats of [lo, hi) at `src` become keys in place, their four digits counted in `hist` (zeroed before the first range). */
export function sortKeys(src: usize, lo: i32, hi: i32, hist: usize): void {
  for (let i = lo; i < hi; i++) {
    const p = src + (<usize>i << 2);
    const k = key(load<u32>(p));
    store<u32>(p, k);
    for (let b: u32 = 0; b < 4; b++) {
      const at = hist + ((<usize>b * 256 + <usize>((k >> (b * 8)) & 0xff)) << 2);
      store<u32>(at, load<u32>(at) + 1);
    }
  }
}

/**
 * Sort step 2, for digit `b` of the n keys at `from`: its counts become start positions. Returns
 * false when every value shares the digit: that pass is not needed.
 */
export function sortOffsets(from: usize, n: i32, hist: usize, b: u32): bool {
  const h = hist + ((<usize>b * 256) << 2);
  if (load<u32>(h + ((<usize>((load<u32>(from) >> (b * 8)) & 0xff)) << 2)) == <u32>n) return false;
  let sum: u32 = 0;
  for (let d = 0; d < 256; d++) {
    const c = load<u32>(h + (<usize>d << 2));
    store<u32>(h + (<usize>d << 2), sum);
    sum += c;
  }
  return true;
}

/** Sort step 3, for digit `b`: the keys [lo, hi) at `from` go to their places at `to` (ranges in order). */
export function sortScatter(from: usize, to: usize, lo: i32, hi: i32, hist: usize, b: u32): void {
  const h = hist + ((<usize>b * 256) << 2);
  for (let i = lo; i < hi; i++) {
    const k = load<u32>(from + (<usize>i << 2));
    const at = h + (<usize>((k >> (b * 8)) & 0xff) << 2);
    const pos = load<u32>(at);
    store<u32>(at, pos + 1);
    store<u32>(to + (<usize>pos << 2), k);
  }
}

/** Sort step 4: the sorted keys [lo, hi) at `from` back to floats at `dst`. */
export function sortUnkeys(from: usize, dst: usize, lo: i32, hi: i32): void {
  for (let i = lo; i < hi; i++) store<u32>(dst + (<usize>i << 2), unkey(load<u32>(from + (<usize>i << 2))));
}

/**
 * For each of the n float32 at `src`, the number of the nb ascending float64 `bounds` that are ≤ it
 * (the index of its nearest centroid when the bounds are the midpoints), as a byte at `codes`. A
 * binary search without branches: a branch per step mispredicted on random weights (35 ns per value
 * in JavaScript).
 */
export function countBoundsBelow(src: usize, n: i32, bounds: usize, nb: i32, codes: usize): void {
  for (let i = 0; i < n; i++) {
    const x = <f64>load<f32>(src + (<usize>i << 2));
    let base = 0, len = nb;
    while (len > 0) {
      const half = len >> 1;
      const take = load<f64>(bounds + (<usize>(base + half) << 3)) <= x;
      base = select(base + half + 1, base, take);
      len = select(len - half - 1, half, take);
    }
    store<u8>(codes + <usize>i, <u8>base);
  }
}
