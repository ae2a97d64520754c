// Quantization kernels in WebAssembly SIMD (AssemblyScript), built with prune.ts into dist/kernels/kernels.wasm.
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
/**
 * A search whose first candidate is FULL's scale (round-to-nearest, as `search=none` makes it) and
 * whose clip ratios shrink SYMMETRIC's: no group ends worse than round-to-nearest on the measure.
 */
const FULL_FIRST: i32 = 3;
/**
 * FULL_FIRST, then the chosen scale re-fitted by least squares for its codes (Σx·q / Σq²) and the
 * codes rounded again with it, kept where that lowers the squared error: a step that can only lower
 * it (bench/RESULTS.md, "The chosen 4-bit scale re-fitted by least squares").
 */
const FULL_FIRST_REFIT: i32 = 4;

/** The mode the clip ratios scale. */
@inline
function clipMode(mode: i32): i32 {
  return mode == FULL_FIRST || mode == FULL_FIRST_REFIT ? SYMMETRIC : mode;
}

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
  } else if (mode == FULL || mode == FULL_FIRST || mode == FULL_FIRST_REFIT) {
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

/**
 * Stores each lane's code (an integral float in −128..255) as a byte at ptr..ptr+3: adding 1.5·2²³
 * leaves the integer in the float's low mantissa bits, whose low byte is the code's byte (two's
 * complement for negative codes). Two instructions where trunc_sat and two narrowings took eight
 * or so on x64.
 */
@inline
function storeCodes(ptr: usize, q: v128): void {
  const bits = f32x4.add(q, f32x4.splat(12582912));
  v128.store32_lane(ptr, i8x16.shuffle(bits, bits, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), 0);
}

// Error figures of the current call, written out by flushStats.
let statMax: f32 = 0, statErr: f64 = 0, statRef: f64 = 0, statZeros: f64 = 0;
let plainMax: f32 = 0, plainErr: f64 = 0, plainRef: f64 = 0;

function resetStats(): void {
  statMax = 0; statErr = 0; statRef = 0; statZeros = 0;
  plainMax = 0; plainErr = 0; plainRef = 0;
}

function flushStats(stats: usize): void {
  store<f64>(stats, max(load<f64>(stats), <f64>statMax));
  store<f64>(stats + 8, load<f64>(stats + 8) + statErr);
  store<f64>(stats + 16, load<f64>(stats + 16) + statRef);
  store<f64>(stats + 24, load<f64>(stats + 24) + statZeros);
  store<f64>(stats + 32, max(load<f64>(stats + 32), <f64>plainMax));
  store<f64>(stats + 40, load<f64>(stats + 40) + plainErr);
  store<f64>(stats + 48, load<f64>(stats + 48) + plainRef);
}

@inline
function countZeros(nz: v128): f64 {
  return <f64>(i32x4.extract_lane(nz, 0) + i32x4.extract_lane(nz, 1) + i32x4.extract_lane(nz, 2) + i32x4.extract_lane(nz, 3));
}

/** Σ squared error over n rows of four lanes with one candidate scale and zero point. */
@inline
function candidateError(first: usize, stride: usize, n: i32, inv: v128, s: v128, z: v128, lo: v128, hi: v128): v128 {
  let err = f32x4.splat(0);
  let p = first;
  for (let r = 0; r < n; r++, p += stride) {
    const x = v128.load(p);
    const d = f32x4.sub(dequantized(x, inv, s, z, lo, hi), x);
    err = f32x4.add(err, f32x4.mul(d, d));
  }
  return err;
}

let err0: v128 = f32x4.splat(0);
let err1: v128 = f32x4.splat(0);
let err2: v128 = f32x4.splat(0);
let err3: v128 = f32x4.splat(0);
let plainRefV: v128 = f32x4.splat(0);
let plainWorstV: v128 = f32x4.splat(0);

/** The scale of candidate k ≥ 1 (clip ratio k − 1) for a symmetric range. */
@inline
function clipped(mn: v128, mx: v128, ratios: usize, k: i32, mode: i32, qmin: f32, qmax: f32): v128 {
  const ratio = f32x4.splat(load<f32>(ratios + (<usize>(k - 1) << 2)));
  params(f32x4.mul(mn, ratio), f32x4.mul(mx, ratio), clipMode(mode), qmin, qmax, 0);
  return outScale;
}

/**
 * Σ squared error of four candidate scales (zero point 0) in one pass, into err0..err3; with
 * `plain`, also Σ x² and the largest error of candidate 0 (plainRefV, plainWorstV).
 */
@inline
function fourCandidates(first: usize, stride: usize, n: i32, s0: v128, s1: v128, s2: v128, s3: v128, lo: v128, hi: v128, plain: bool): void {
  const one = f32x4.splat(1);
  const i0 = f32x4.div(one, s0), i1 = f32x4.div(one, s1), i2 = f32x4.div(one, s2), i3 = f32x4.div(one, s3);
  let e0 = f32x4.splat(0), e1 = f32x4.splat(0), e2 = f32x4.splat(0), e3 = f32x4.splat(0);
  let ref = f32x4.splat(0), worst = f32x4.splat(0);
  let p = first;
  // Errors in units of each candidate's step (t − q, t = x/s): one multiply fewer per value and
  // candidate than (q·s − x), then scaled back once per group.
  for (let r = 0; r < n; r++, p += stride) {
    const x = v128.load(p);
    const t0 = f32x4.mul(x, i0), t1 = f32x4.mul(x, i1), t2 = f32x4.mul(x, i2), t3 = f32x4.mul(x, i3);
    const d0 = f32x4.sub(f32x4.pmin(f32x4.pmax(f32x4.nearest(t0), lo), hi), t0);
    const d1 = f32x4.sub(f32x4.pmin(f32x4.pmax(f32x4.nearest(t1), lo), hi), t1);
    const d2 = f32x4.sub(f32x4.pmin(f32x4.pmax(f32x4.nearest(t2), lo), hi), t2);
    const d3 = f32x4.sub(f32x4.pmin(f32x4.pmax(f32x4.nearest(t3), lo), hi), t3);
    e0 = f32x4.add(e0, f32x4.mul(d0, d0));
    e1 = f32x4.add(e1, f32x4.mul(d1, d1));
    e2 = f32x4.add(e2, f32x4.mul(d2, d2));
    e3 = f32x4.add(e3, f32x4.mul(d3, d3));
    if (plain) {
      ref = f32x4.add(ref, f32x4.mul(x, x));
      worst = f32x4.pmax(worst, f32x4.abs(d0));
    }
  }
  err0 = f32x4.mul(e0, f32x4.mul(s0, s0)); err1 = f32x4.mul(e1, f32x4.mul(s1, s1));
  err2 = f32x4.mul(e2, f32x4.mul(s2, s2)); err3 = f32x4.mul(e3, f32x4.mul(s3, s3));
  if (plain) {
    plainRefV = ref;
    plainWorstV = f32x4.mul(worst, f32x4.abs(s0));
  }
}

/**
 * FULL_FIRST_REFIT's last step for four groups (lane by lane, rows as in fourCandidates) whose search
 * chose `scale` with squared error `best`: the least-squares scale for the chosen codes, Σx·q / Σq²,
 * and its error with the codes rounded again; returns it where that error is smaller, else `scale`.
 * A group whose codes are all 0 keeps its scale.
 */
@inline
function refitted(first: usize, stride: usize, n: i32, scale: v128, best: v128, lo: v128, hi: v128): v128 {
  const zero = f32x4.splat(0), one = f32x4.splat(1);
  const inv = f32x4.div(one, scale);
  let xq = zero, qq = zero;
  let p = first;
  for (let r = 0; r < n; r++, p += stride) {
    const x = v128.load(p);
    const q = f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.mul(x, inv)), lo), hi);
    xq = f32x4.add(xq, f32x4.mul(x, q));
    qq = f32x4.add(qq, f32x4.mul(q, q));
  }
  const fitted = f32x4.div(xq, qq);
  const usable = v128.and(f32x4.gt(qq, zero), f32x4.ne(fitted, zero));
  const s = v128.bitselect(fitted, scale, usable);
  const i = f32x4.div(one, s);
  let e = zero;
  p = first;
  for (let r = 0; r < n; r++, p += stride) {
    const t = f32x4.mul(v128.load(p), i);
    const d = f32x4.sub(f32x4.pmin(f32x4.pmax(f32x4.nearest(t), lo), hi), t);
    e = f32x4.add(e, f32x4.mul(d, d));
  }
  const better = v128.and(usable, f32x4.lt(f32x4.mul(e, f32x4.mul(s, s)), best));
  return v128.bitselect(s, scale, better);
}

/**
 * Four groups of n values each, lane by lane: the values of group `lane` at row r are at
 * first + r·stride + 4·lane. Finds each group's scale (min/max, then the clip ratios when nRatios > 0,
 * keeping the smallest squared error), leaves it in outScale/outZero, writes the codes (row r's
 * four at codes + r·codeStride) and adds to the error figures.
 */
function chunk(
  first: usize, stride: usize, n: i32, codes: usize, codeStride: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, ratios: usize, nRatios: i32,
): void {
  const lo = f32x4.splat(qmin), hi = f32x4.splat(qmax), one = f32x4.splat(1);
  let mn = f32x4.splat(Infinity), mx = f32x4.splat(-Infinity);
  let p = first;
  for (let r = 0; r < n; r++, p += stride) {
    const x = v128.load(p);
    mn = f32x4.pmin(mn, x);
    mx = f32x4.pmax(mx, x);
  }
  params(mn, mx, mode, qmin, qmax, zpSym);
  let scale = outScale, zp = outZero;
  if (nRatios > 0 && mode != ASYMMETRIC && zpSym == 0) {
    // Zero points 0: four candidates per pass over the values, four independent sums. Candidate 0
    // is the plain min/max scale (its error figures are reported too), then each clip ratio; a last
    // group of fewer repeats its last candidate, which can never win twice.
    const total = nRatios + 1;
    let best = f32x4.splat(0);
    for (let k = 0; k < total; k += 4) {
      const s0 = k == 0 ? scale : clipped(mn, mx, ratios, k, mode, qmin, qmax);
      const s1 = clipped(mn, mx, ratios, min(k + 1, total - 1), mode, qmin, qmax);
      const s2 = clipped(mn, mx, ratios, min(k + 2, total - 1), mode, qmin, qmax);
      const s3 = clipped(mn, mx, ratios, min(k + 3, total - 1), mode, qmin, qmax);
      if (k == 0) {
        fourCandidates(first, stride, n, s0, s1, s2, s3, lo, hi, true);
        plainErr += hsum(err0);
        plainRef += hsum(plainRefV);
        plainMax = max(plainMax, hmax(plainWorstV));
        best = err0;
      } else {
        fourCandidates(first, stride, n, s0, s1, s2, s3, lo, hi, false);
        const better = f32x4.lt(err0, best);
        best = v128.bitselect(err0, best, better); scale = v128.bitselect(s0, scale, better);
      }
      // In candidate order, a later one only where strictly better: the choice a one-by-one search makes.
      let better = f32x4.lt(err1, best);
      best = v128.bitselect(err1, best, better); scale = v128.bitselect(s1, scale, better);
      better = f32x4.lt(err2, best);
      best = v128.bitselect(err2, best, better); scale = v128.bitselect(s2, scale, better);
      better = f32x4.lt(err3, best);
      best = v128.bitselect(err3, best, better); scale = v128.bitselect(s3, scale, better);
    }
    if (mode == FULL_FIRST_REFIT) scale = refitted(first, stride, n, scale, best, lo, hi);
  } else if (nRatios > 0) {
    // Plain min/max first (its error figures are reported), then each shrunken range.
    let inv = f32x4.div(one, scale);
    let best = f32x4.splat(0), ref = f32x4.splat(0), worst = f32x4.splat(0);
    p = first;
    for (let r = 0; r < n; r++, p += stride) {
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
      params(f32x4.mul(mn, ratio), f32x4.mul(mx, ratio), clipMode(mode), qmin, qmax, zpSym);
      const s = outScale, z = outZero;
      inv = f32x4.div(one, s);
      const err = candidateError(first, stride, n, inv, s, z, lo, hi);
      const better = f32x4.lt(err, best);
      best = v128.bitselect(err, best, better);
      scale = v128.bitselect(s, scale, better);
      zp = v128.bitselect(z, zp, better);
    }
  }
  outScale = scale;
  outZero = zp;
  const inv = f32x4.div(one, scale);
  let worst = f32x4.splat(0), err = f32x4.splat(0), ref = f32x4.splat(0), nz = i32x4.splat(0);
  p = first;
  let out = codes;
  if (nRatios > 0 && mode != ASYMMETRIC && zpSym == 0) {
    // After the zero-point-free search: no zero point to add and take off, and Σ x² is known
    // (the same sums in the same order as below). A second copy of the loop, not a flag in one:
    // neither compiler takes a constant test out of a loop, and the flag cost 7 % of the kernel.
    for (let r = 0; r < n; r++, p += stride, out += codeStride) {
      const x = v128.load(p);
      const q = f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.mul(x, inv)), lo), hi);
      storeCodes(out, q);
      const y = f32x4.mul(q, scale);
      const d = f32x4.abs(f32x4.sub(y, x));
      worst = f32x4.pmax(worst, d);
      err = f32x4.add(err, f32x4.mul(d, d));
      nz = i32x4.sub(nz, f32x4.eq(y, f32x4.splat(0)));
    }
    statMax = max(statMax, hmax(worst));
    statErr += hsum(err);
    statRef += hsum(plainRefV);
    statZeros += countZeros(nz);
    return;
  }
  for (let r = 0; r < n; r++, p += stride, out += codeStride) {
    const x = v128.load(p);
    const q = code(x, inv, zp, lo, hi);
    storeCodes(out, q);
    const y = f32x4.mul(f32x4.sub(q, zp), scale);
    const d = f32x4.abs(f32x4.sub(y, x));
    worst = f32x4.pmax(worst, d);
    err = f32x4.add(err, f32x4.mul(d, d));
    ref = f32x4.add(ref, f32x4.mul(x, x));
    nz = i32x4.sub(nz, f32x4.eq(y, f32x4.splat(0)));
  }
  statMax = max(statMax, hmax(worst));
  statErr += hsum(err);
  statRef += hsum(ref);
  statZeros += countZeros(nz);
}

/**
 * Groups of B consecutive rows of one column in a row-major [R, C] matrix: per-channel scales
 * of a MatMul weight (B = R) or its 4-bit blocks along K. Group (block b, column c) is number
 * b·C + c. Four columns go through the lanes together; the last C mod 4 through a padded copy.
 */
export function colGroups(
  src: usize, R: i32, C: i32, B: i32, codes: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, ratios: usize, nRatios: i32, stats: usize, scratch: usize,
): void {
  resetStats();
  const C4 = C & ~3;
  for (let r0 = 0, b = 0; r0 < R; r0 += B, b++) {
    const r1 = min(R, r0 + B);
    if (C4 < C) edge(src, r0, r1, C, C4, b, codes, scales, zeros, mode, qmin, qmax, zpSym, ratios, nRatios, scratch);
    if (nRatios == 0) {
      colSweep(src, r0, r1, C, C4, b, codes, scales, zeros, mode, qmin, qmax, zpSym, scratch);
      continue;
    }
    for (let c = 0; c < C4; c += 4) {
      // The search reads the block ten times: from a contiguous copy, since rows a power-of-two
      // multiple apart fall in the same cache set (4-bit block 32 on 768×3072: 5.8 ns per weight in
      // place, 3.9 from the copy).
      let from = src + ((<usize>r0 * C + c) << 2);
      for (let r: usize = 0; r < <usize>(r1 - r0); r++, from += <usize>C << 2) v128.store(scratch + (r << 4), v128.load(from));
      chunk(scratch, 16, r1 - r0, codes + <usize>r0 * C + c, C, mode, qmin, qmax, zpSym, ratios, nRatios);
      const g = (<usize>b * C + c) << 2;
      v128.store(scales + g, outScale);
      v128.store(zeros + g, outZero);
    }
  }
  flushStats(stats);
}

/**
 * Columns C4..C (fewer than four) of one block: copied into `scratch` with the missing lanes 0,
 * quantized there, and their codes and scales copied back. The zero lanes add nothing to the
 * error sums; the zeros they would add to the count are taken off.
 */
function edge(
  src: usize, r0: i32, r1: i32, C: i32, C4: i32, b: i32, codes: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, ratios: usize, nRatios: i32, scratch: usize,
): void {
  const n = r1 - r0, t = C - C4;
  const codeScratch = scratch + (<usize>n << 4);
  for (let r = 0; r < n; r++) {
    const row = src + ((<usize>(r0 + r) * C + C4) << 2), to = scratch + (<usize>r << 4);
    v128.store(to, f32x4.splat(0));
    for (let j = 0; j < t; j++) store<f32>(to + (<usize>j << 2), load<f32>(row + (<usize>j << 2)));
  }
  chunk(scratch, 16, n, codeScratch, 4, mode, qmin, qmax, zpSym, ratios, nRatios);
  statZeros -= <f64>((4 - t) * n);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < t; j++) store<u8>(codes + <usize>(r0 + r) * C + C4 + j, load<u8>(codeScratch + (<usize>r << 2) + j));
  }
  const lanes = codeScratch + (<usize>n << 2);
  v128.store(lanes, outScale);
  v128.store(lanes + 16, outZero);
  for (let j = 0; j < t; j++) {
    store<f32>(scales + ((<usize>b * C + C4 + j) << 2), load<f32>(lanes + (<usize>j << 2)));
    store<f32>(zeros + ((<usize>b * C + C4 + j) << 2), load<f32>(lanes + 16 + (<usize>j << 2)));
  }
}

/**
 * One block of rows r0..r1 of colGroups, taken row by row: a tall block walked four columns at a
 * time would read each row's cache line four times over (1.6 ns per weight on a 768×3072 MatMul
 * weight; row by row, about half). Columns 0..C4 (a multiple of 4). The running min/max and each
 * column's scale live in `scratch` (3·C4 floats).
 */
function colSweep(
  src: usize, r0: i32, r1: i32, C: i32, C4: i32, b: i32, codes: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, scratch: usize,
): void {
  const lo = f32x4.splat(qmin), hi = f32x4.splat(qmax), one = f32x4.splat(1);
  const row = <usize>C << 2, width = <usize>C4 << 2;
  const mins = scratch, maxs = scratch + width, invs = scratch + 2 * width;
  for (let c: usize = 0; c < width; c += 16) {
    v128.store(mins + c, f32x4.splat(Infinity));
    v128.store(maxs + c, f32x4.splat(-Infinity));
  }
  let p = src + <usize>r0 * row;
  for (let r = r0; r < r1; r++, p += row) {
    for (let c: usize = 0; c < width; c += 16) {
      const x = v128.load(p + c);
      v128.store(mins + c, f32x4.pmin(v128.load(mins + c), x));
      v128.store(maxs + c, f32x4.pmax(v128.load(maxs + c), x));
    }
  }
  const sOut = scales + <usize>b * row, zOut = zeros + <usize>b * row;
  for (let c: usize = 0; c < width; c += 16) {
    params(v128.load(mins + c), v128.load(maxs + c), mode, qmin, qmax, zpSym);
    v128.store(sOut + c, outScale);
    v128.store(zOut + c, outZero);
    v128.store(invs + c, f32x4.div(one, outScale));
  }
  let maxAbs = f32x4.splat(0), nz = i32x4.splat(0);
  p = src + <usize>r0 * row;
  let out = codes + <usize>r0 * C;
  for (let r = r0; r < r1; r++, p += row, out += C) {
    let err = f32x4.splat(0), ref = f32x4.splat(0);
    for (let c: usize = 0; c < width; c += 16) {
      const x = v128.load(p + c);
      const zp = v128.load(zOut + c), scale = v128.load(sOut + c);
      const q = code(x, v128.load(invs + c), zp, lo, hi);
      storeCodes(out + (c >> 2), q);
      const y = f32x4.mul(f32x4.sub(q, zp), scale);
      const d = f32x4.abs(f32x4.sub(y, x));
      maxAbs = f32x4.pmax(maxAbs, d);
      err = f32x4.add(err, f32x4.mul(d, d));
      ref = f32x4.add(ref, f32x4.mul(x, x));
      nz = i32x4.sub(nz, f32x4.eq(y, f32x4.splat(0)));
    }
    statErr += hsum(err);
    statRef += hsum(ref);
  }
  statMax = max(statMax, hmax(maxAbs));
  statZeros += countZeros(nz);
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
 * The least-squares scale Σx·q / Σq² for the codes of values[p, p + n) with `scale` (zero point 0),
 * or `scale` where every code is 0 or the fit is 0 (single()'s form of refitted()).
 */
function refittedScale(p: usize, n: i32, scale: f32, qmin: f32, qmax: f32): f32 {
  const lo = f32x4.splat(qmin), hi = f32x4.splat(qmax);
  const inv = f32x4.div(f32x4.splat(1), f32x4.splat(scale));
  const n4 = n & ~3;
  let xq: f64 = 0, qq: f64 = 0;
  let xqV = f32x4.splat(0), qqV = f32x4.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const x = v128.load(p + (<usize>i << 2));
    const q = f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.mul(x, inv)), lo), hi);
    xqV = f32x4.add(xqV, f32x4.mul(x, q));
    qqV = f32x4.add(qqV, f32x4.mul(q, q));
    if ((i & 4095) == 4092) { xq += hsum(xqV); qq += hsum(qqV); xqV = f32x4.splat(0); qqV = f32x4.splat(0); }
  }
  xq += hsum(xqV);
  qq += hsum(qqV);
  const invS = f32x4.extract_lane(inv, 0);
  for (let i = n4; i < n; i++) {
    const x = load<f32>(p + (<usize>i << 2));
    const q = min(max(nearest(x * invS), qmin), qmax);
    xq += <f64>(x * q);
    qq += <f64>(q * q);
  }
  const fitted = <f32>(xq / qq);
  return qq > 0 && fitted != 0 && isFinite(fitted) ? fitted : scale;
}

/**
 * Groups of B consecutive values within rows of length L (the last group of a row may be shorter):
 * a whole tensor (rows 1, B = L), channels laid out contiguously (Conv, Gather rows, Gemm with
 * transB), or 4-bit blocks along the last axis. Group (row, block) is number row·⌈L/B⌉ + block.
 */
export function rowGroups(
  src: usize, rows: i32, L: i32, B: i32, codes: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, ratios: usize, nRatios: i32, stats: usize, scratch: usize,
): void {
  resetStats();
  let g: usize = 0;
  // Short equal groups go four at a time through the lanes (see interleaved); what is left, one by one.
  if (B <= 256 && (B & 3) == 0 && L % B == 0) {
    const count = <usize>rows * <usize>(L / B);
    for (; g + 4 <= count; g += 4) interleaved(src, g, B, codes, scales, zeros, mode, qmin, qmax, zpSym, ratios, nRatios, scratch);
  }
  const perRow = <usize>((L + B - 1) / B);
  for (; g < <usize>rows * perRow; g++) {
    const row = <i32>(g / perRow), s = <i32>(g % perRow) * B;
    single(src + ((<usize>row * L + s) << 2), min(B, L - s), codes + <usize>row * L + s, g, scales, zeros, mode, qmin, qmax, zpSym, ratios, nRatios);
  }
  flushStats(stats);
}

/**
 * Groups g..g+3 (each B values, one after another in memory) through chunk(): their values are
 * transposed four by four into `scratch` so that lane i holds group g+i, and the codes transposed
 * back. Small groups one at a time spend most of their time summing across lanes (12 ns per weight
 * for 4-bit block 32 with the search; this way, about half).
 */
function interleaved(
  src: usize, g: usize, B: i32, codes: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, ratios: usize, nRatios: i32, scratch: usize,
): void {
  const size = <usize>B << 2;
  const p0 = src + g * size;
  for (let j: usize = 0; j < <usize>B; j += 4) {
    const a = v128.load(p0 + (j << 2)), b = v128.load(p0 + size + (j << 2));
    const c = v128.load(p0 + 2 * size + (j << 2)), d = v128.load(p0 + 3 * size + (j << 2));
    const ab0 = i32x4.shuffle(a, b, 0, 4, 1, 5), ab1 = i32x4.shuffle(a, b, 2, 6, 3, 7);
    const cd0 = i32x4.shuffle(c, d, 0, 4, 1, 5), cd1 = i32x4.shuffle(c, d, 2, 6, 3, 7);
    const out = scratch + (j << 4);
    v128.store(out, i64x2.shuffle(ab0, cd0, 0, 2));
    v128.store(out + 16, i64x2.shuffle(ab0, cd0, 1, 3));
    v128.store(out + 32, i64x2.shuffle(ab1, cd1, 0, 2));
    v128.store(out + 48, i64x2.shuffle(ab1, cd1, 1, 3));
  }
  const codeScratch = scratch + (size << 2);
  chunk(scratch, 16, B, codeScratch, 4, mode, qmin, qmax, zpSym, ratios, nRatios);
  v128.store(scales + (g << 2), outScale);
  v128.store(zeros + (g << 2), outZero);
  // Codes of row j (four groups) sit at codeScratch + 4j: four rows at once, transposed bytewise.
  const c0 = codes + g * <usize>B;
  for (let j: usize = 0; j < <usize>B; j += 4) {
    const v = i8x16.shuffle(v128.load(codeScratch + (j << 2)), v128.load(codeScratch + (j << 2)), 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    v128.store32_lane(c0 + j, v, 0);
    v128.store32_lane(c0 + <usize>B + j, v, 1);
    v128.store32_lane(c0 + 2 * <usize>B + j, v, 2);
    v128.store32_lane(c0 + 3 * <usize>B + j, v, 3);
  }
}

/** One group of n consecutive values at `first`, number g: long groups (whole channels, tensors). */
function single(
  first: usize, n: i32, out: usize, g: usize, scales: usize, zeros: usize,
  mode: i32, qmin: f32, qmax: f32, zpSym: f32, ratios: usize, nRatios: i32,
): void {
  const lo = f32x4.splat(qmin), hi = f32x4.splat(qmax), one = f32x4.splat(1);
  const n4 = n & ~3;
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
      params(f32x4.splat(mn * ratio), f32x4.splat(mx * ratio), clipMode(mode), qmin, qmax, zpSym);
      const s2 = f32x4.extract_lane(outScale, 0), z2 = f32x4.extract_lane(outZero, 0);
      const e = groupError(first, n, s2, z2, qmin, qmax);
      if (e < best) { best = e; scale = s2; zp = z2; }
    }
    if (mode == FULL_FIRST_REFIT) {
      const fitted = refittedScale(first, n, scale, qmin, qmax);
      if (fitted != scale && groupError(first, n, fitted, 0, qmin, qmax) < best) scale = fitted;
    }
  }
  store<f32>(scales + (g << 2), scale);
  store<f32>(zeros + (g << 2), zp);
  const sV = f32x4.splat(scale), zV = f32x4.splat(zp), inv = f32x4.div(one, sV);
  let worst = f32x4.splat(0), err = f32x4.splat(0), ref = f32x4.splat(0), nz = i32x4.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const x = v128.load(first + (<usize>i << 2));
    const q = code(x, inv, zV, lo, hi);
    storeCodes(out + i, q);
    const y = f32x4.mul(f32x4.sub(q, zV), sV);
    const d = f32x4.abs(f32x4.sub(y, x));
    worst = f32x4.pmax(worst, d);
    err = f32x4.add(err, f32x4.mul(d, d));
    ref = f32x4.add(ref, f32x4.mul(x, x));
    nz = i32x4.sub(nz, f32x4.eq(y, f32x4.splat(0)));
    // float32 sums lose precision over long runs: fold them into the float64 totals now and then.
    if ((i & 4095) == 4092) {
      statErr += hsum(err); statRef += hsum(ref);
      err = f32x4.splat(0); ref = f32x4.splat(0);
    }
  }
  statMax = max(statMax, hmax(worst));
  statErr += hsum(err);
  statRef += hsum(ref);
  statZeros += countZeros(nz);
  const invS = f32x4.extract_lane(inv, 0);
  for (let i = n4; i < n; i++) {
    const x = load<f32>(first + (<usize>i << 2));
    const q = min(max(nearest(x * invS) + zp, qmin), qmax);
    store<i8>(out + i, <i8><i32>q);
    const y = (q - zp) * scale;
    const d = abs(y - x);
    statMax = max(statMax, d);
    statErr += <f64>(d * d);
    statRef += <f64>(x * x);
    if (y == 0) statZeros += 1;
  }
}

/** Two 4-bit codes a byte, the first in the low nibble (ONNX INT4/UINT4 raw_data). */
export function packPairs(codes: usize, n: i32, out: usize): void {
  const pairs = n >> 1;
  const low = i8x16.splat(15);
  let i = 0;
  for (; i + 8 <= pairs; i += 8) {
    const v = v128.load(codes + (<usize>i << 1));
    const even = i8x16.shuffle(v, v, 0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
    const odd = i8x16.shuffle(v, v, 1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15);
    v128.store64_lane(out + i, v128.or(v128.and(even, low), i8x16.shl(odd, 4)), 0);
  }
  for (; i < pairs; i++) {
    const a = <u32>load<u8>(codes + (<usize>i << 1));
    const b = <u32>load<u8>(codes + (<usize>i << 1) + 1);
    store<u8>(out + i, <u8>((a & 15) | ((b & 15) << 4)));
  }
  if (n & 1) store<u8>(out + pairs, <u8>(load<u8>(codes + n - 1) & 15));
}

/**
 * MatMulNBits' B from codes of a [K, N] weight: [N, ⌈K/block⌉, block/2] bytes, codes along K two to
 * a byte (low nibble first), each code plus `shift`; positions past K hold the block's zero point
 * (from `zeros`, group b·N + n) so that they dequantize to 0. Sixteen columns go through the lanes
 * together (two rows make sixteen bytes, one for each column's blob); a ragged edge goes one by one.
 */
export function packMatMulNBits(codes: usize, K: i32, N: i32, block: i32, shift: i32, zeros: usize, out: usize): void {
  const kBlocks = (K + block - 1) / block;
  const padded = kBlocks * block;
  const blob = <usize>(block >> 1);
  const rowBytes = <usize>kBlocks * blob;
  const add = i8x16.splat(<i8>shift), low = i8x16.splat(15);
  const wide = N & ~15;
  const pairs = K & ~1;
  for (let n0 = 0; n0 < wide; n0 += 16) {
    const base = out + <usize>n0 * rowBytes;
    // Block by block, so that finding a byte's place takes no division (block is not a constant).
    for (let k0 = 0, at0 = base; k0 < pairs; k0 += block, at0 += blob) {
      const k1 = min(pairs, k0 + block);
      for (let k = k0, at = at0; k < k1; k += 2, at++) {
        const a = v128.and(i8x16.add(v128.load(codes + <usize>k * N + n0), add), low);
        const c = v128.and(i8x16.add(v128.load(codes + <usize>(k + 1) * N + n0), add), low);
        const v = v128.or(a, i8x16.shl(c, 4));
        v128.store8_lane(at, v, 0); v128.store8_lane(at + rowBytes, v, 1);
        v128.store8_lane(at + 2 * rowBytes, v, 2); v128.store8_lane(at + 3 * rowBytes, v, 3);
        v128.store8_lane(at + 4 * rowBytes, v, 4); v128.store8_lane(at + 5 * rowBytes, v, 5);
        v128.store8_lane(at + 6 * rowBytes, v, 6); v128.store8_lane(at + 7 * rowBytes, v, 7);
        v128.store8_lane(at + 8 * rowBytes, v, 8); v128.store8_lane(at + 9 * rowBytes, v, 9);
        v128.store8_lane(at + 10 * rowBytes, v, 10); v128.store8_lane(at + 11 * rowBytes, v, 11);
        v128.store8_lane(at + 12 * rowBytes, v, 12); v128.store8_lane(at + 13 * rowBytes, v, 13);
        v128.store8_lane(at + 14 * rowBytes, v, 14); v128.store8_lane(at + 15 * rowBytes, v, 15);
      }
    }
  }
  // Columns past the last sixteen, and for all columns the rows from the last pair on (padding).
  for (let n = 0; n < N; n++) {
    const from = n < wide ? pairs : 0;
    for (let k = from; k < padded; k += 2) {
      const b = k / block;
      const pad = <i32>load<f32>(zeros + ((<usize>b * N + n) << 2)) + shift;
      const a = k < K ? <i32>load<i8>(codes + <usize>k * N + n) + shift : pad;
      const c = k + 1 < K ? <i32>load<i8>(codes + <usize>(k + 1) * N + n) + shift : pad;
      store<u8>(out + <usize>n * rowBytes + <usize>b * blob + <usize>((k - b * block) >> 1), <u8>((a & 15) | ((c & 15) << 4)));
    }
  }
}

/** dst[c·rows + r] = src[r·cols + c] for 4-byte elements (scales [blocks, N] → [N, blocks]). */
export function transpose32(src: usize, rows: i32, cols: i32, dst: usize): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) store<u32>(dst + ((<usize>c * rows + r) << 2), load<u32>(src + ((<usize>r * cols + c) << 2)));
  }
}
