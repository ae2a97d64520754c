// Quantization kernels in WebAssembly SIMD (AssemblyScript), built to dist/quantize/kernels.wasm.
// Scalar JavaScript spends 7–12 ns per weight on rounding and error figures whatever the loop order
// (measured on BERT-base); four lanes at a time in float32 bring that to about 1 ns.
//
// f32x4.pmin/pmax (one instruction each on x86) stand in for min/max (several, for NaN and −0 rules)
// with the operand order chosen so that they mean what the scalar code means.
//
// Everything works in float32, lane for lane the same operations as the scalar tails, so a group's
// result does not depend on which path or thread handled it. The caller lays out the memory:
// values (f32), codes (one byte per value), scales and zero points (f32 per group), candidate clip
// ratios (f32) and the error figures (f64 × 8: max abs, Σ error², Σ value², zeros, and the first
// three again for plain min/max scales when a search ran), which are added to.

const SYMMETRIC: i32 = 0;
/** Symmetric with the group's extreme on the most negative code (the scale may be negative). */
const FULL: i32 = 1;
const ASYMMETRIC: i32 = 2;

let outScale: v128 = f32x4.splat(1);
let outZero: v128 = f32x4.splat(0);
let outErr: v128 = f32x4.splat(0);

/** Scale and zero point of four groups from their min and max (in outScale, outZero). */
@inline
function params(mn: v128, mx: v128, mode: i32, qmin: f32, qmax: f32, zpSym: f32): void {
  const zero = f32x4.splat(0);
  const one = f32x4.splat(1);
  if (mode == SYMMETRIC) {
    const absMax = f32x4.pmax(f32x4.abs(mn), f32x4.abs(mx));
    const scale = f32x4.div(absMax, f32x4.splat(qmax));
    outScale = v128.bitselect(scale, one, f32x4.gt(scale, zero));
    outZero = f32x4.splat(zpSym);
  } else if (mode == FULL) {
    const extreme = v128.bitselect(mn, mx, f32x4.ge(f32x4.abs(mn), f32x4.abs(mx)));
    const scale = f32x4.div(extreme, f32x4.splat(qmin));
    outScale = v128.bitselect(scale, one, f32x4.ne(scale, zero));
    outZero = zero;
  } else {
    // The range always includes 0, so that 0.0 is exactly representable (pruned zeros stay zero).
    const lo = f32x4.pmin(zero, mn);
    const hi = f32x4.pmax(zero, mx);
    const scale = f32x4.div(f32x4.sub(hi, lo), f32x4.splat(qmax - qmin));
    const ok = f32x4.gt(scale, zero);
    let zp = f32x4.nearest(f32x4.sub(f32x4.splat(qmin), f32x4.div(lo, scale)));
    zp = f32x4.pmin(f32x4.pmax(zp, f32x4.splat(qmin)), f32x4.splat(qmax));
    outZero = v128.bitselect(zp, f32x4.splat(qmin < 0 ? 0 : qmin), ok);
    outScale = v128.bitselect(scale, one, ok);
  }
}

/** The dequantized value of x: clamp(round(x / scale) + zp) − zp, times scale. */
@inline
function dequantized(x: v128, inv: v128, scale: v128, zp: v128, lo: v128, hi: v128): v128 {
  let q = f32x4.add(f32x4.nearest(f32x4.mul(x, inv)), zp);
  q = f32x4.pmin(f32x4.pmax(q, lo), hi);
  return f32x4.mul(f32x4.sub(q, zp), scale);
}

@inline
function code(x: v128, inv: v128, zp: v128, lo: v128, hi: v128): v128 {
  let q = f32x4.add(f32x4.nearest(f32x4.mul(x, inv)), zp);
  return f32x4.pmin(f32x4.pmax(q, lo), hi);
}

@inline
function hsum(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}

@inline
function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** Stores the low byte of each lane's integer code at ptr..ptr+3. */
@inline
function storeCodes(ptr: usize, q: v128, signed: bool): void {
  const i32s = i32x4.trunc_sat_f32x4_s(q);
  const i16s = i16x8.narrow_i32x4_s(i32s, i32s);
  const bytes = signed ? i8x16.narrow_i16x8_s(i16s, i16s) : i8x16.narrow_i16x8_u(i16s, i16s);
  v128.store32_lane(ptr, bytes, 0);
}

@inline
function addStats(stats: usize, at: i32, maxAbs: f32, errSq: f64, refSq: f64): void {
  const p = stats + (<usize>at << 3);
  store<f64>(p, max(load<f64>(p), <f64>maxAbs));
  store<f64>(p + 8, load<f64>(p + 8) + errSq);
  store<f64>(p + 16, load<f64>(p + 16) + refSq);
}

/**
 * Groups of B consecutive rows of one column in a row-major [R, C] matrix (C a multiple of 4):
 * per-channel scales of a MatMul weight (B = R) or its 4-bit blocks along K. Group (block b,
 * column c) is number b·C + c. Four columns go through the lanes together.
 */
export function colGroups(
  src: usize, R: i32, C: i32, B: i32, codes: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, ratios: usize, nRatios: i32, stats: usize, signed: bool, scratch: usize,
): void {
  if (nRatios == 0) {
    for (let r0 = 0, b = 0; r0 < R; r0 += B, b++) colSweep(src, r0, min(R, r0 + B), C, b, codes, scales, zeros, mode, qmin, qmax, zpSym, scratch, stats, signed);
    return;
  }
  const lo = f32x4.splat(qmin), hi = f32x4.splat(qmax), one = f32x4.splat(1);
  const stride = <usize>C << 2;
  let maxAbs: f32 = 0, plainMax: f32 = 0;
  let errSq: f64 = 0, refSq: f64 = 0, zerosCount: f64 = 0, plainErr: f64 = 0, plainRef: f64 = 0;
  for (let r0 = 0, b = 0; r0 < R; r0 += B, b++) {
    const r1 = min(R, r0 + B);
    for (let c = 0; c < C; c += 4) {
      const first = src + ((<usize>r0 * C + c) << 2);
      let mn = f32x4.splat(Infinity), mx = f32x4.splat(-Infinity);
      let p = first;
      for (let r = r0; r < r1; r++, p += stride) {
        const x = v128.load(p);
        mn = f32x4.pmin(mn, x);
        mx = f32x4.pmax(mx, x);
      }
      params(mn, mx, mode, qmin, qmax, zpSym);
      let scale = outScale, zp = outZero;
      if (nRatios > 0) {
        // Plain min/max first (its error figures are reported), then each shrunken range.
        let inv = f32x4.div(one, scale);
        let best = f32x4.splat(0), ref = f32x4.splat(0), worst = f32x4.splat(0);
        p = first;
        for (let r = r0; r < r1; r++, p += stride) {
          const x = v128.load(p);
          const d = f32x4.abs(f32x4.sub(dequantized(x, inv, scale, zp, lo, hi), x));
          best = f32x4.add(best, f32x4.mul(d, d));
          ref = f32x4.add(ref, f32x4.mul(x, x));
          worst = f32x4.pmax(worst, d);
        }
        plainErr += hsum(best);
        plainRef += hsum(ref);
        plainMax = max(plainMax, hmax(worst));
        for (let k = 0; k < nRatios; k++) {
          const ratio = f32x4.splat(load<f32>(ratios + (<usize>k << 2)));
          params(f32x4.mul(mn, ratio), f32x4.mul(mx, ratio), mode, qmin, qmax, zpSym);
          const s = outScale, z = outZero;
          inv = f32x4.div(one, s);
          let err = f32x4.splat(0);
          p = first;
          for (let r = r0; r < r1; r++, p += stride) {
            const x = v128.load(p);
            const d = f32x4.sub(dequantized(x, inv, s, z, lo, hi), x);
            err = f32x4.add(err, f32x4.mul(d, d));
          }
          const better = f32x4.lt(err, best);
          best = v128.bitselect(err, best, better);
          scale = v128.bitselect(s, scale, better);
          zp = v128.bitselect(z, zp, better);
        }
      }
      const g = (<usize>b * C + c) << 2;
      v128.store(scales + g, scale);
      v128.store(zeros + g, zp);
      const inv = f32x4.div(one, scale);
      let worst = f32x4.splat(0), err = f32x4.splat(0), ref = f32x4.splat(0), nz = i32x4.splat(0);
      p = first;
      let out = codes + <usize>r0 * C + c;
      for (let r = r0; r < r1; r++, p += stride, out += C) {
        const x = v128.load(p);
        const q = code(x, inv, zp, lo, hi);
        storeCodes(out, q, signed);
        const y = f32x4.mul(f32x4.sub(q, zp), scale);
        const d = f32x4.abs(f32x4.sub(y, x));
        worst = f32x4.pmax(worst, d);
        err = f32x4.add(err, f32x4.mul(d, d));
        ref = f32x4.add(ref, f32x4.mul(x, x));
        nz = i32x4.sub(nz, f32x4.eq(y, f32x4.splat(0)));
      }
      maxAbs = max(maxAbs, hmax(worst));
      errSq += hsum(err);
      refSq += hsum(ref);
      zerosCount += <f64>(i32x4.extract_lane(nz, 0) + i32x4.extract_lane(nz, 1) + i32x4.extract_lane(nz, 2) + i32x4.extract_lane(nz, 3));
    }
  }
  addStats(stats, 0, maxAbs, errSq, refSq);
  store<f64>(stats + 24, load<f64>(stats + 24) + zerosCount);
  if (nRatios > 0) addStats(stats, 4, plainMax, plainErr, plainRef);
}

/**
 * One block of rows r0..r1 of colGroups, taken row by row: a tall block walked four columns at a
 * time would read each row's cache line four times over (1.6 ns per weight on a 768×3072 MatMul
 * weight; row by row, about half). The running min/max and each column's scale live in `scratch`
 * (3·C floats).
 */
function colSweep(
  src: usize, r0: i32, r1: i32, C: i32, b: i32, codes: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, scratch: usize, stats: usize, signed: bool,
): void {
  const lo = f32x4.splat(qmin), hi = f32x4.splat(qmax), one = f32x4.splat(1);
  const row = <usize>C << 2;
  const mins = scratch, maxs = scratch + row, invs = scratch + 2 * row;
  for (let c: usize = 0; c < row; c += 16) {
    v128.store(mins + c, f32x4.splat(Infinity));
    v128.store(maxs + c, f32x4.splat(-Infinity));
  }
  let p = src + <usize>r0 * row;
  for (let r = r0; r < r1; r++, p += row) {
    for (let c: usize = 0; c < row; c += 16) {
      const x = v128.load(p + c);
      v128.store(mins + c, f32x4.pmin(v128.load(mins + c), x));
      v128.store(maxs + c, f32x4.pmax(v128.load(maxs + c), x));
    }
  }
  const sOut = scales + <usize>b * row, zOut = zeros + <usize>b * row;
  for (let c: usize = 0; c < row; c += 16) {
    params(v128.load(mins + c), v128.load(maxs + c), mode, qmin, qmax, zpSym);
    v128.store(sOut + c, outScale);
    v128.store(zOut + c, outZero);
    v128.store(invs + c, f32x4.div(one, outScale));
  }
  let maxAbs = f32x4.splat(0), nz = i32x4.splat(0);
  let errSq: f64 = 0, refSq: f64 = 0;
  p = src + <usize>r0 * row;
  let out = codes + <usize>r0 * C;
  for (let r = r0; r < r1; r++, p += row, out += C) {
    let err = f32x4.splat(0), ref = f32x4.splat(0);
    for (let c: usize = 0; c < row; c += 16) {
      const x = v128.load(p + c);
      const zp = v128.load(zOut + c), scale = v128.load(sOut + c);
      const q = code(x, v128.load(invs + c), zp, lo, hi);
      storeCodes(out + (c >> 2), q, signed);
      const y = f32x4.mul(f32x4.sub(q, zp), scale);
      const d = f32x4.abs(f32x4.sub(y, x));
      maxAbs = f32x4.pmax(maxAbs, d);
      err = f32x4.add(err, f32x4.mul(d, d));
      ref = f32x4.add(ref, f32x4.mul(x, x));
      nz = i32x4.sub(nz, f32x4.eq(y, f32x4.splat(0)));
    }
    errSq += hsum(err);
    refSq += hsum(ref);
  }
  addStats(stats, 0, hmax(maxAbs), errSq, refSq);
  store<f64>(stats + 24, load<f64>(stats + 24) + <f64>(i32x4.extract_lane(nz, 0) + i32x4.extract_lane(nz, 1) + i32x4.extract_lane(nz, 2) + i32x4.extract_lane(nz, 3)));
}

/** Sum of squared errors of values[p, p + n) quantized with the given scale and zero point. */
function groupError(p: usize, n: i32, scale: f32, zp: f32, qmin: f32, qmax: f32): f64 {
  const s = f32x4.splat(scale), z = f32x4.splat(zp), lo = f32x4.splat(qmin), hi = f32x4.splat(qmax);
  const inv = f32x4.div(f32x4.splat(1), s);
  const n4 = n & ~3;
  let total: f64 = 0;
  let err = f32x4.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const x = v128.load(p + (<usize>i << 2));
    const d = f32x4.sub(dequantized(x, inv, s, z, lo, hi), x);
    err = f32x4.add(err, f32x4.mul(d, d));
    if ((i & 4095) == 4092) { total += hsum(err); err = f32x4.splat(0); }
  }
  total += hsum(err);
  const invS = f32x4.extract_lane(inv, 0);
  for (let i = n4; i < n; i++) {
    const x = load<f32>(p + (<usize>i << 2));
    const q = min(max(nearest(x * invS) + zp, qmin), qmax);
    const d = (q - zp) * scale - x;
    total += <f64>(d * d);
  }
  return total;
}

/**
 * Groups of B consecutive values within rows of length L (the last group of a row may be shorter):
 * a whole tensor (rows 1, B = L), channels laid out contiguously (Conv, Gather rows, Gemm with
 * transB), or 4-bit blocks along the last axis. Group (row, block) is number row·⌈L/B⌉ + block.
 */
export function rowGroups(
  src: usize, rows: i32, L: i32, B: i32, codes: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, ratios: usize, nRatios: i32, stats: usize, signed: bool,
): void {
  const lo = f32x4.splat(qmin), hi = f32x4.splat(qmax), one = f32x4.splat(1);
  let maxAbs: f32 = 0, plainMax: f32 = 0;
  let errSq: f64 = 0, refSq: f64 = 0, zerosCount: f64 = 0, plainErr: f64 = 0, plainRef: f64 = 0;
  let g: usize = 0;
  for (let row = 0; row < rows; row++) {
    for (let s = 0; s < L; s += B, g++) {
      const n = min(B, L - s);
      const n4 = n & ~3;
      const first = src + ((<usize>row * L + s) << 2);
      let mnV = f32x4.splat(Infinity), mxV = f32x4.splat(-Infinity);
      for (let i = 0; i < n4; i += 4) {
        const x = v128.load(first + (<usize>i << 2));
        mnV = f32x4.pmin(mnV, x);
        mxV = f32x4.pmax(mxV, x);
      }
      let mn = min(min(f32x4.extract_lane(mnV, 0), f32x4.extract_lane(mnV, 1)), min(f32x4.extract_lane(mnV, 2), f32x4.extract_lane(mnV, 3)));
      let mx = max(max(f32x4.extract_lane(mxV, 0), f32x4.extract_lane(mxV, 1)), max(f32x4.extract_lane(mxV, 2), f32x4.extract_lane(mxV, 3)));
      for (let i = n4; i < n; i++) {
        const x = load<f32>(first + (<usize>i << 2));
        if (x < mn) mn = x;
        if (x > mx) mx = x;
      }
      if (n == 0) { mn = 0; mx = 0; }
      params(f32x4.splat(mn), f32x4.splat(mx), mode, qmin, qmax, zpSym);
      let scale = f32x4.extract_lane(outScale, 0), zp = f32x4.extract_lane(outZero, 0);
      if (nRatios > 0) {
        let best = groupError(first, n, scale, zp, qmin, qmax);
        // The plain scales' figures, reported beside the searched ones.
        const inv = f32x4.splat(1 / scale), sV = f32x4.splat(scale), zV = f32x4.splat(zp);
        let worst = f32x4.splat(0), ref = f32x4.splat(0);
        for (let i = 0; i < n4; i += 4) {
          const x = v128.load(first + (<usize>i << 2));
          worst = f32x4.pmax(worst, f32x4.abs(f32x4.sub(dequantized(x, inv, sV, zV, lo, hi), x)));
          ref = f32x4.add(ref, f32x4.mul(x, x));
        }
        let worstS = hmax(worst);
        let refS = hsum(ref);
        const invS = f32x4.extract_lane(inv, 0);
        for (let i = n4; i < n; i++) {
          const x = load<f32>(first + (<usize>i << 2));
          const q = min(max(nearest(x * invS) + zp, qmin), qmax);
          worstS = max(worstS, abs((q - zp) * scale - x));
          refS += <f64>(x * x);
        }
        plainErr += best;
        plainRef += refS;
        plainMax = max(plainMax, worstS);
        for (let k = 0; k < nRatios; k++) {
          const ratio = load<f32>(ratios + (<usize>k << 2));
          params(f32x4.splat(mn * ratio), f32x4.splat(mx * ratio), mode, qmin, qmax, zpSym);
          const s2 = f32x4.extract_lane(outScale, 0), z2 = f32x4.extract_lane(outZero, 0);
          const e = groupError(first, n, s2, z2, qmin, qmax);
          if (e < best) { best = e; scale = s2; zp = z2; }
        }
      }
      store<f32>(scales + (g << 2), scale);
      store<f32>(zeros + (g << 2), zp);
      const sV = f32x4.splat(scale), zV = f32x4.splat(zp), inv = f32x4.div(one, sV);
      let worst = f32x4.splat(0), err = f32x4.splat(0), ref = f32x4.splat(0), nz = i32x4.splat(0);
      const out = codes + <usize>row * L + s;
      for (let i = 0; i < n4; i += 4) {
        const x = v128.load(first + (<usize>i << 2));
        const q = code(x, inv, zV, lo, hi);
        storeCodes(out + i, q, signed);
        const y = f32x4.mul(f32x4.sub(q, zV), sV);
        const d = f32x4.abs(f32x4.sub(y, x));
        worst = f32x4.pmax(worst, d);
        err = f32x4.add(err, f32x4.mul(d, d));
        ref = f32x4.add(ref, f32x4.mul(x, x));
        nz = i32x4.sub(nz, f32x4.eq(y, f32x4.splat(0)));
        // float32 sums lose precision over long runs: fold them into the float64 totals now and then.
        if ((i & 4095) == 4092) {
          errSq += hsum(err); refSq += hsum(ref);
          err = f32x4.splat(0); ref = f32x4.splat(0);
        }
      }
      maxAbs = max(maxAbs, hmax(worst));
      errSq += hsum(err);
      refSq += hsum(ref);
      zerosCount += <f64>(i32x4.extract_lane(nz, 0) + i32x4.extract_lane(nz, 1) + i32x4.extract_lane(nz, 2) + i32x4.extract_lane(nz, 3));
      const invS = f32x4.extract_lane(inv, 0);
      for (let i = n4; i < n; i++) {
        const x = load<f32>(first + (<usize>i << 2));
        const q = min(max(nearest(x * invS) + zp, qmin), qmax);
        store<i8>(out + i, <i8><i32>q);
        const y = (q - zp) * scale;
        const d = abs(y - x);
        maxAbs = max(maxAbs, d);
        errSq += <f64>(d * d);
        refSq += <f64>(x * x);
        if (y == 0) zerosCount += 1;
      }
    }
  }
  addStats(stats, 0, maxAbs, errSq, refSq);
  store<f64>(stats + 24, load<f64>(stats + 24) + zerosCount);
  if (nRatios > 0) addStats(stats, 4, plainMax, plainErr, plainRef);
}

/** Two 4-bit codes a byte, the first in the low nibble (ONNX INT4/UINT4 raw_data). */
export function packPairs(codes: usize, n: i32, out: usize): void {
  const pairs = n >> 1;
  for (let i = 0; i < pairs; i++) {
    const a = <u32>load<u8>(codes + (<usize>i << 1));
    const b = <u32>load<u8>(codes + (<usize>i << 1) + 1);
    store<u8>(out + i, <u8>((a & 15) | ((b & 15) << 4)));
  }
  if (n & 1) store<u8>(out + pairs, <u8>(load<u8>(codes + n - 1) & 15));
}

/**
 * MatMulNBits' B from codes of a [K, N] weight: [N, ⌈K/block⌉, block/2] bytes, codes along K two to
 * a byte (low nibble first), each code plus `shift`; positions past K hold the block's zero point
 * (from `zeros`, group b·N + n) so that they dequantize to 0. Columns go sixteen at a time so that
 * the rows read stay in cache.
 */
export function packMatMulNBits(codes: usize, K: i32, N: i32, block: i32, shift: i32, zeros: usize, out: usize): void {
  const kBlocks = (K + block - 1) / block;
  const padded = kBlocks * block;
  const blob = block >> 1;
  for (let n0 = 0; n0 < N; n0 += 16) {
    const n1 = min(N, n0 + 16);
    for (let k = 0; k < padded; k += 2) {
      const b = k / block;
      const j = k - b * block;
      for (let n = n0; n < n1; n++) {
        const pad = <i32>load<f32>(zeros + ((<usize>b * N + n) << 2)) + shift;
        const a = k < K ? <i32>load<i8>(codes + <usize>k * N + n) + shift : pad;
        const c = k + 1 < K ? <i32>load<i8>(codes + <usize>(k + 1) * N + n) + shift : pad;
        store<u8>(out + (<usize>n * kBlocks + b) * blob + (j >> 1), <u8>((a & 15) | ((c & 15) << 4)));
      }
    }
  }
}
