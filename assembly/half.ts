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
  const special = v128.or(sign, v128.bitselect(i32x4.splat(0x7e00), i32x4.splat(0x7c00), i32x4.gt_s(f, i32x4.splat(0x7f800000))));
  // Below float16's smallest normal: the float addition rounds the subnormal's bits into place.
  const sub = i32x4.sub(f32x4.add(f, f32x4.splat(reinterpret<f32>(DENORM_MAGIC))), i32x4.splat(DENORM_MAGIC));
  const odd = v128.and(i32x4.shr_u(f, 13), i32x4.splat(1));
  const normal = v128.and(
    i32x4.shr_u(i32x4.add(i32x4.add(f, i32x4.splat(<i32>((15 - 127) << 23) + 0xfff)), odd), 13),
    i32x4.splat(0xffff),
  );
  const finite = v128.bitselect(sub, normal, i32x4.lt_s(f, i32x4.splat(0x38800000)));
  return v128.bitselect(special, v128.or(sign, finite), i32x4.ge_s(f, i32x4.splat(0x47800000)));
}

/**
 * Lanes (as all-ones masks) whose |x| bits `f` are 0 or round to a normal float16: from float16's
 * smallest normal 2^-14 up to, not including, 65520 (which rounds to even, to infinity).
 */
@inline
function normalOrZero(f: v128): v128 {
  return v128.or(
    v128.and(i32x4.ge_s(f, i32x4.splat(0x38800000)), i32x4.lt_s(f, i32x4.splat(0x477ff000))),
    i32x4.eq(f, i32x4.splat(0)),
  );
}

/** |x| bits rounded to float16's 10 fraction bits (to nearest even), as float32 bits. */
@inline
function roundedTo10Bits(f: v128): v128 {
  const odd = v128.and(i32x4.shr_u(f, 13), i32x4.splat(1));
  return v128.and(i32x4.add(i32x4.add(f, i32x4.splat(0xfff)), odd), i32x4.splat(0xffffe000));
}

/** float16 bits (sign clear) of roundedTo10Bits' result: the exponent re-biased; 0 stays 0. */
@inline
function halfOfRounded(r: v128): v128 {
  return i32x4.max_s(i32x4.sub(i32x4.shr_u(r, 13), i32x4.splat((127 - 15) << 10)), i32x4.splat(0));
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
  return v128.or(sign, v128.bitselect(subnormal, normal, i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0))));
}

/**
 * Converts the n float32 values at `src` to float16 (bfloat16 when `bf16`) bits at `out` (u16), and
 * adds to `stats` (f64): [0] max |x − converted| (NaN ignored), [1] Σ (x − converted)², [2] Σ x², and
 * keeps in [3] the largest |x| (NaN once any value is NaN).
 */
export function toHalf(src: usize, n: i32, out: usize, bf16: i32, stats: usize): void {
  if (bf16) convert(src, n, out, stats, true);
  else convert(src, n, out, stats, false);
}

// Squares are summed in float32 over a chunk of CHUNK values, then in float64: the sums' relative
// error stays below CHUNK/4 × 2^-24 (they are figures for a report), and float64 for every value
// cost a quarter of the conversion's time.
const CHUNK: i32 = 512;
/** Below this a chunk's float32 sum of squares may have lost terms to underflow (squares below 2^-126). */
const SMALLEST_SUM: f64 = 8.673617379884035e-19; // 2^-60

@inline
function convert(src: usize, n: i32, out: usize, stats: usize, bf16: bool): void {
  let maxErr = f32x4.splat(0), largest = f32x4.splat(0);
  let errSq: f64 = 0, sq: f64 = 0;
  const n8 = n & ~7;
  for (let j = 0; j < n8; j += CHUNK) {
    const end = min(j + CHUNK, n8);
    let e4 = f32x4.splat(0), s4 = f32x4.splat(0);
    for (let i = j; i < end; i += 8) {
      const p = src + (<usize>i << 2);
      const a = v128.load(p), b = v128.load(p, 16);
      if (!bf16) {
        // Eight values that are all 0 or round to a normal float16 (nearly every weight): the
        // rounded value is the float32 bits with the low 13 rounded off, which is also the value
        // converted back, so neither halfLanes' special cases nor fromHalfLanes are needed. Same
        // bits and figures as the general path below (bench/half-exhaustive.mjs).
        const fa = v128.and(a, i32x4.splat(0x7fffffff)), fb = v128.and(b, i32x4.splat(0x7fffffff));
        if (i32x4.all_true(v128.and(normalOrZero(fa), normalOrZero(fb)))) {
          const ra = roundedTo10Bits(fa), rb = roundedTo10Bits(fb);
          const ha = v128.or(halfOfRounded(ra), v128.and(i32x4.shr_u(a, 16), i32x4.splat(0x8000)));
          const hb = v128.or(halfOfRounded(rb), v128.and(i32x4.shr_u(b, 16), i32x4.splat(0x8000)));
          v128.store(out + (<usize>i << 1), i16x8.narrow_i32x4_u(ha, hb));
          const da = f32x4.abs(f32x4.sub(fa, ra)), db = f32x4.abs(f32x4.sub(fb, rb));
          maxErr = f32x4.pmax(f32x4.pmax(maxErr, da), db);
          largest = i32x4.max_u(i32x4.max_u(largest, fa), fb);
          e4 = f32x4.add(e4, f32x4.add(f32x4.mul(da, da), f32x4.mul(db, db)));
          s4 = f32x4.add(s4, f32x4.add(f32x4.mul(a, a), f32x4.mul(b, b)));
          continue;
        }
      }
      const ha = bf16 ? bfloat16Lanes(a) : halfLanes(a);
      const hb = bf16 ? bfloat16Lanes(b) : halfLanes(b);
      v128.store(out + (<usize>i << 1), i16x8.narrow_i32x4_u(ha, hb));
      const ba = bf16 ? i32x4.shl(ha, 16) : fromHalfLanes(ha);
      const bb = bf16 ? i32x4.shl(hb, 16) : fromHalfLanes(hb);
      // x − converted is exact in float32 (it is the bits the rounding dropped).
      const da = f32x4.abs(f32x4.sub(a, ba)), db = f32x4.abs(f32x4.sub(b, bb));
      maxErr = f32x4.pmax(f32x4.pmax(maxErr, da), db);
      // |x| as bits: unsigned integer order is float order, and NaN's bits sort above infinity's.
      largest = i32x4.max_u(i32x4.max_u(largest, f32x4.abs(a)), f32x4.abs(b));
      e4 = f32x4.add(e4, f32x4.add(f32x4.mul(da, da), f32x4.mul(db, db)));
      s4 = f32x4.add(s4, f32x4.add(f32x4.mul(a, a), f32x4.mul(b, b)));
    }
    const e = <f64>f32x4.extract_lane(e4, 0) + <f64>f32x4.extract_lane(e4, 1) + <f64>f32x4.extract_lane(e4, 2) + <f64>f32x4.extract_lane(e4, 3);
    const s = <f64>f32x4.extract_lane(s4, 0) + <f64>f32x4.extract_lane(s4, 1) + <f64>f32x4.extract_lane(s4, 2) + <f64>f32x4.extract_lane(s4, 3);
    if (s >= SMALLEST_SUM && isFinite(s)) {
      errSq += e;
      sq += s;
    } else {
      // A square past float32's range (|x| ≥ 2^64), inf/NaN, or a chunk of values so small (or zero)
      // that their float32 squares lose their digits: its sums again in float64.
      for (let i = j; i < end; i++) {
        const x = <f64>load<f32>(src + (<usize>i << 2));
        const h = <u32>load<u16>(out + (<usize>i << 1));
        const back = <f64>f32x4.extract_lane(bf16 ? i32x4.shl(i32x4.splat(h), 16) : fromHalfLanes(i32x4.splat(h)), 0);
        errSq += (x - back) * (x - back);
        sq += x * x;
      }
    }
  }
  let mErr = <f64>Mathf.max(Mathf.max(f32x4.extract_lane(maxErr, 0), f32x4.extract_lane(maxErr, 1)), 0);
  mErr = Math.max(mErr, <f64>Mathf.max(f32x4.extract_lane(maxErr, 2), f32x4.extract_lane(maxErr, 3)));
  const bigBits = max(max(i32x4.extract_lane(largest, 0) as u32, i32x4.extract_lane(largest, 1) as u32), max(i32x4.extract_lane(largest, 2) as u32, i32x4.extract_lane(largest, 3) as u32));
  let big = bigBits > 0x7f800000 ? NaN : <f64>reinterpret<f32>(bigBits);
  let e2 = errSq, s2 = sq;
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
