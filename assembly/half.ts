// float32 → float16 / bfloat16 conversion, four values per instruction, with the rounding error
// measured on the way. The same integer rounding as ir/half.ts (round to nearest even; NaN to a
// quiet NaN of the same sign; values rounding past 65504 to infinity), so the bits are identical to
// the JavaScript conversion's; a scalar JavaScript loop took most of an fp16 conversion's time.

const DENORM_MAGIC: u32 = (127 - 15 + (23 - 10) + 1) << 23;

/** float16 bits of four float32 values (as u32 lanes, high halves zero). */
@inline
function halfLanes(x: v128): v128 {
  const sign = v128.and(i32x4.shr_u(x, 16), i32x4.splat(0x8000));
  const f = v128.and(x, i32x4.splat(0x7fffffff));
  // ≥ 65536 (rounds to infinity), infinity, NaN.
  const special = v128.or(sign, v128.bitselect(i32x4.splat(0x7e00), i32x4.splat(0x7c00), i32x4.gt_u(f, i32x4.splat(0x7f800000))));
  // Below float16's smallest normal: the float addition rounds the subnormal's bits into place.
  const sub = i32x4.sub(f32x4.add(f, f32x4.splat(reinterpret<f32>(DENORM_MAGIC))), i32x4.splat(DENORM_MAGIC));
  const odd = v128.and(i32x4.shr_u(f, 13), i32x4.splat(1));
  const normal = v128.and(
    i32x4.shr_u(i32x4.add(i32x4.add(f, i32x4.splat(<i32>((15 - 127) << 23) + 0xfff)), odd), 13),
    i32x4.splat(0xffff),
  );
  const finite = v128.bitselect(sub, normal, i32x4.lt_u(f, i32x4.splat(0x38800000)));
  return v128.bitselect(special, v128.or(sign, finite), i32x4.ge_u(f, i32x4.splat(0x47800000)));
}

/** bfloat16 bits of four float32 values: the upper halves rounded to nearest even; NaN stays a quiet NaN. */
@inline
function bfloat16Lanes(x: v128): v128 {
  const high = i32x4.shr_u(x, 16);
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(x, i32x4.splat(0x7fff)), v128.and(high, i32x4.splat(1))), 16);
  const nan = v128.and(
    i32x4.eq(v128.and(x, i32x4.splat(0x7f800000)), i32x4.splat(0x7f800000)),
    v128.not(i32x4.eq(v128.and(x, i32x4.splat(0x7fffff)), i32x4.splat(0))),
  );
  return v128.bitselect(v128.and(v128.or(high, i32x4.splat(0x40)), i32x4.splat(0xffff)), rounded, nan);
}

/** The float32 values of four float16 bit patterns (u32 lanes): exact, as ir/half.ts's table. */
@inline
function fromHalfLanes(h: v128): v128 {
  const w = i32x4.shl(h, 16);
  const sign = v128.and(w, i32x4.splat(0x80000000));
  const twice = i32x4.add(w, w);
  // Normal and special values: the exponent re-biased by a float multiply (2^-112), which also turns
  // float16 infinity and NaN into float32's.
  const normal = f32x4.mul(i32x4.add(i32x4.shr_u(twice, 4), i32x4.splat(0xe0 << 23)), f32x4.splat(reinterpret<f32>(0x7800000)));
  // Subnormals: the fraction placed under 0.5's exponent, minus 0.5.
  const subnormal = f32x4.sub(v128.or(i32x4.shr_u(twice, 17), i32x4.splat(126 << 23)), f32x4.splat(0.5));
  return v128.or(sign, v128.bitselect(subnormal, normal, i32x4.lt_u(twice, i32x4.splat(1 << 27))));
}

/**
 * Converts the n float32 values at `src` to float16 (bfloat16 when `bf16`) bits at `out` (u16), and
 * adds to `stats` (f64): [0] max |x − converted| (NaN ignored), [1] Σ (x − converted)², [2] Σ x², and
 * keeps in [3] the largest |x| (NaN once any value is NaN).
 */
export function toHalf(src: usize, n: i32, out: usize, bf16: i32, stats: usize): void {
  let maxErr = f32x4.splat(0), largest = f32x4.splat(0);
  let errSq = f64x2.splat(0), sq = f64x2.splat(0);
  const n8 = n & ~7;
  for (let i = 0; i < n8; i += 8) {
    const p = src + (<usize>i << 2);
    const a = v128.load(p), b = v128.load(p, 16);
    const ha = bf16 ? bfloat16Lanes(a) : halfLanes(a);
    const hb = bf16 ? bfloat16Lanes(b) : halfLanes(b);
    v128.store(out + (<usize>i << 1), i16x8.narrow_i32x4_u(ha, hb));
    const ba = bf16 ? i32x4.shl(ha, 16) : fromHalfLanes(ha);
    const bb = bf16 ? i32x4.shl(hb, 16) : fromHalfLanes(hb);
    // x − converted is exact in float32 (it is the bits the rounding dropped); squares sum in f64.
    const da = f32x4.abs(f32x4.sub(a, ba)), db = f32x4.abs(f32x4.sub(b, bb));
    maxErr = f32x4.pmax(f32x4.pmax(maxErr, da), db);
    largest = f32x4.max(f32x4.max(largest, f32x4.abs(a)), f32x4.abs(b));
    const d0 = f64x2.promote_low_f32x4(da), d1 = f64x2.promote_low_f32x4(i64x2.shuffle(da, da, 1, 0));
    const d2 = f64x2.promote_low_f32x4(db), d3 = f64x2.promote_low_f32x4(i64x2.shuffle(db, db, 1, 0));
    errSq = f64x2.add(errSq, f64x2.add(f64x2.add(f64x2.mul(d0, d0), f64x2.mul(d1, d1)), f64x2.add(f64x2.mul(d2, d2), f64x2.mul(d3, d3))));
    const x0 = f64x2.promote_low_f32x4(a), x1 = f64x2.promote_low_f32x4(i64x2.shuffle(a, a, 1, 0));
    const x2 = f64x2.promote_low_f32x4(b), x3 = f64x2.promote_low_f32x4(i64x2.shuffle(b, b, 1, 0));
    sq = f64x2.add(sq, f64x2.add(f64x2.add(f64x2.mul(x0, x0), f64x2.mul(x1, x1)), f64x2.add(f64x2.mul(x2, x2), f64x2.mul(x3, x3))));
  }
  let mErr = <f64>Mathf.max(Mathf.max(f32x4.extract_lane(maxErr, 0), f32x4.extract_lane(maxErr, 1)), 0);
  mErr = Math.max(mErr, <f64>Mathf.max(f32x4.extract_lane(maxErr, 2), f32x4.extract_lane(maxErr, 3)));
  let big = Math.max(
    Math.max(<f64>f32x4.extract_lane(largest, 0), <f64>f32x4.extract_lane(largest, 1)),
    Math.max(<f64>f32x4.extract_lane(largest, 2), <f64>f32x4.extract_lane(largest, 3)),
  );
  let e2 = f64x2.extract_lane(errSq, 0) + f64x2.extract_lane(errSq, 1);
  let s2 = f64x2.extract_lane(sq, 0) + f64x2.extract_lane(sq, 1);
  for (let i = n8; i < n; i++) {
    const x = v128.splat<f32>(load<f32>(src + (<usize>i << 2)));
    const h = bf16 ? bfloat16Lanes(x) : halfLanes(x);
    store<u16>(out + (<usize>i << 1), <u16>i32x4.extract_lane(h, 0));
    const back = f32x4.extract_lane(bf16 ? i32x4.shl(h, 16) : fromHalfLanes(h), 0);
    const v = f32x4.extract_lane(x, 0);
    const d = <f64>Mathf.abs(v - back);
    if (d > mErr) mErr = d;
    const a = <f64>Mathf.abs(v);
    if (a > big || isNaN(a)) big = a;
    e2 += d * d;
    s2 += <f64>v * <f64>v;
  }
  store<f64>(stats, Math.max(load<f64>(stats), mErr));
  store<f64>(stats, load<f64>(stats, 8) + e2, 8);
  store<f64>(stats, load<f64>(stats, 16) + s2, 16);
  const had = load<f64>(stats, 24);
  store<f64>(stats, isNaN(had) || isNaN(big) ? NaN : Math.max(had, big), 24);
}
