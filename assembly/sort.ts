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

/** Sorts the n float32 at `src` ascending; `tmp` holds n more, `hist` 4 × 256 counters (u32). */
export function sortFloats(src: usize, tmp: usize, n: i32, hist: usize): void {
  memory.fill(hist, 0, 4 * 256 * 4);
  for (let i = 0; i < n; i++) {
    const p = src + (<usize>i << 2);
    const k = key(load<u32>(p));
    store<u32>(p, k);
    for (let b: u32 = 0; b < 4; b++) {
      const at = hist + ((<usize>b * 256 + <usize>((k >> (b * 8)) & 0xff)) << 2);
      store<u32>(at, load<u32>(at) + 1);
    }
  }
  let from = src, to = tmp;
  for (let b: u32 = 0; b < 4; b++) {
    const h = hist + ((<usize>b * 256) << 2);
    // A digit every value shares needs no pass.
    if (load<u32>(h + ((<usize>((load<u32>(from) >> (b * 8)) & 0xff)) << 2)) == <u32>n) continue;
    let sum: u32 = 0;
    for (let d = 0; d < 256; d++) {
      const c = load<u32>(h + (<usize>d << 2));
      store<u32>(h + (<usize>d << 2), sum);
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const k = load<u32>(from + (<usize>i << 2));
      const at = h + (<usize>((k >> (b * 8)) & 0xff) << 2);
      const pos = load<u32>(at);
      store<u32>(at, pos + 1);
      store<u32>(to + (<usize>pos << 2), k);
    }
    const t = from; from = to; to = t;
  }
  for (let i = 0; i < n; i++) store<u32>(src + (<usize>i << 2), unkey(load<u32>(from + (<usize>i << 2))));
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
