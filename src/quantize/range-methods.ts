// How a calibrated activation range is chosen from what was seen: the extremes (minmax), a
// percentile of the values, the clipping threshold whose 8-bit distribution is closest to the
// values' own by KL divergence (entropy, as TensorRT and ONNX Runtime do it), or the range whose
// 8-bit grid gives the least mean squared error (mse, as NNCF's and PyTorch's histogram observers).
// The statistics stream (kernels/activation-stats.ts): a running min/max per value, then a histogram
// over [−A, A] (A = the largest magnitude seen), so that memory holds a few thousand counts per
// value, never the activations themselves.
import { addToHistogram, HISTOGRAM_BINS, HISTOGRAM_SLOTS, type Extremes } from '../kernels/activation-stats.js';
import { groupParams, type IntRange } from '../kernels/quantize.js';

/**
 * entropy: the step between the thresholds tried first. Trying every one of the 2,048 bins cost about
 * 0.5 s a value on this machine (ResNet-50's 100 values: most of its calibration); the bins around the
 * best coarse threshold are then all tried.
 */
export const ENTROPY_STRIDE = 8;

/** A value's counts over [−absMax, absMax] in HISTOGRAM_BINS equal bins, and of its exact zeros (filled by kernels/activation-stats.ts). */
export class Histogram {
  constructor(
    readonly absMax: number,
    readonly slots = new Float64Array(HISTOGRAM_SLOTS),
  ) {}

  get counts(): Float64Array {
    return this.slots.subarray(0, HISTOGRAM_BINS);
  }

  /** Elements exactly 0 (counted in bin HISTOGRAM_BINS / 2 too). */
  get zeros(): number {
    return this.slots[HISTOGRAM_BINS]!;
  }

  add(data: Float32Array): void {
    addToHistogram(this.slots, this.absMax, data);
  }

  /** The counts of |x| over [0, absMax], HISTOGRAM_BINS / 2 bins; `withZeros` false leaves exact zeros out of the first. */
  magnitudes(withZeros = true): Float64Array {
    const half = HISTOGRAM_BINS / 2;
    const out = new Float64Array(half);
    for (let j = 0; j < half; j++) out[j] = this.slots[half + j]! + this.slots[half - 1 - j]!;
    if (!withZeros) out[0]! -= this.zeros;
    return out;
  }
}

export interface Range {
  min: number;
  max: number;
}

/**
 * The range holding `percentile` % of the values: symmetric quantization cuts the largest
 * magnitudes, asymmetric cuts half of the rest from each end (as ONNX Runtime's percentile
 * calibrator). Never wider than the extremes.
 */
export function percentileRange(h: Histogram, e: Extremes, percentile: number, symmetric: boolean): Range {
  const width = h.absMax / (HISTOGRAM_BINS / 2);
  const clamp = (r: Range): Range => ({ min: Math.max(r.min, e.min), max: Math.min(r.max, e.max) });
  if (symmetric) {
    const m = h.magnitudes();
    const t = (cut(m, percentile / 100) + 1) * width;
    return clamp({ min: -t, max: t });
  }
  const tail = (1 - percentile / 100) / 2;
  const lo = cut(h.counts, tail),
    hi = cut(h.counts, 1 - tail);
  const edge = (bin: number) => (bin - HISTOGRAM_BINS / 2) * width;
  return clamp({ min: edge(lo), max: edge(hi + 1) });
}

/** The first bin at which the cumulative share of the counts reaches `share`. */
function cut(counts: Float64Array, share: number): number {
  let total = 0;
  for (const c of counts) total += c;
  const target = share * total;
  let sum = 0;
  for (let i = 0; i < counts.length; i++) {
    sum += counts[i]!;
    if (sum >= target) return i;
  }
  return counts.length - 1;
}

/**
 * The magnitude threshold T minimizing KL(P ‖ Q) over the |x| histogram (TensorRT's calibration):
 * P is the histogram cut at T with everything beyond added to its last bin, Q the same counts
 * merged into `levels` bins (the codes one side of zero gets) and spread back over P's non-empty
 * bins. Exact zeros are left out: every grid holds them exactly, whatever T (a Relu's output is half
 * zeros, whose spike in the first bin made KL choose 1/4 of the extremes on ResNet-50, measured).
 * Levels: 256 for values of one sign under asymmetric uint8/int8 (the whole code range lies
 * on that side), 128 otherwise. The thresholds tried: every `stride`-th bin from `levels` up, then
 * every bin within a stride of the best of those (stride 1: every bin, as TensorRT).
 */
export function entropyRange(h: Histogram, e: Extremes, levels: number, stride = ENTROPY_STRIDE): Range {
  const m = h.magnitudes(false);
  const bins = m.length;
  const width = h.absMax / bins;
  // below[i]: the counts of the first i bins (integers: exact in float64), so what lies past a threshold is one subtraction.
  const below = new Float64Array(bins + 1);
  for (let i = 0; i < bins; i++) below[i + 1] = below[i]! + m[i]!;
  const p = new Float64Array(bins),
    q = new Float64Array(bins);
  const klAt = (i: number): number => {
    for (let k = 0; k < i; k++) p[k] = m[k]!;
    p[i - 1]! += below[bins]! - below[i]!;
    for (let j = 0; j < levels; j++) {
      const start = Math.floor((j * i) / levels),
        end = Math.floor(((j + 1) * i) / levels);
      let nonEmpty = 0;
      for (let k = start; k < end; k++) if (m[k] !== 0) nonEmpty++;
      const each = nonEmpty > 0 ? (below[end]! - below[start]!) / nonEmpty : 0;
      for (let k = start; k < end; k++) q[k] = m[k] !== 0 ? each : 0;
    }
    return divergence(p, q, i);
  };
  // Thresholds from `levels` bins up: every `stride`-th, then each bin around the best of those.
  const first = Math.min(levels, bins);
  let best = bins,
    bestKl = Infinity;
  const consider = (i: number) => {
    const kl = klAt(i);
    if (kl < bestKl || (kl === bestKl && i < best)) {
      bestKl = kl;
      best = i;
    }
  };
  for (let i = first; i <= bins; i += stride) consider(i);
  if (stride > 1) {
    const around = best;
    for (let i = Math.max(first, around - stride + 1); i <= Math.min(bins, around + stride - 1); i++) if (i !== around) consider(i);
  }
  const t = best * width;
  return { min: Math.max(-t, e.min), max: Math.min(t, e.max) };
}

/**
 * KL(p ‖ q) over the first n bins. Empty bins of either get a small count taken from the others
 * (ONNX Runtime's smoothing, on counts, which are at least 1 where not empty), so a bin only P fills
 * costs much but not infinity; both are then normalized.
 */
function divergence(p: Float64Array, q: Float64Array, n: number): number {
  const eps = 1e-4;
  const smooth = (a: Float64Array): number => {
    let zeros = 0;
    for (let k = 0; k < n; k++) if (a[k] === 0) zeros++;
    if (zeros === n) return 0;
    const take = (eps * zeros) / (n - zeros);
    let sum = 0;
    for (let k = 0; k < n; k++) sum += a[k] = a[k] === 0 ? eps : a[k]! - take;
    return sum;
  };
  const sp = smooth(p),
    sq = smooth(q);
  if (sp === 0 || sq === 0) return Infinity;
  let kl = 0;
  for (let k = 0; k < n; k++) {
    const pk = p[k]! / sp;
    kl += pk * Math.log(pk / (q[k]! / sq));
  }
  return kl;
}

/**
 * The range whose quantization grid (as groupParams makes it for `range`) gives the histogram's values
 * the least mean squared error, counting both the rounding inside the grid and the clipping beyond
 * it (NNCF's and PyTorch's histogram-based MSE). Each bin's values are taken as spread evenly over the
 * bin, so its error is an exact integral (squaredErrorIntegral). The search: for each end of the
 * range, 64 thresholds evenly spaced up to the extreme, then 32 between the best one's neighbours;
 * asymmetric ranges with values of both signs move one end, then the other, twice.
 */
export function mseRange(h: Histogram, e: Extremes, range: IntRange, symmetric: boolean): Range {
  const lowest = Math.min(e.min, 0),
    highest = Math.max(e.max, 0);
  if (e.count === 0 || !(h.absMax > 0)) return { min: lowest, max: highest };
  const bins = binsOf(h);
  const error = (lo: number, hi: number) => gridError(bins, groupParams(lo, hi, range, symmetric), range);
  if (symmetric) {
    const t = bestThreshold(Math.max(-lowest, highest), (t) => error(-t, t));
    return { min: Math.max(-t, e.min), max: Math.min(t, e.max) };
  }
  let lo = lowest,
    hi = highest;
  for (let round = 0; round < 2; round++) {
    if (highest > 0) hi = bestThreshold(highest, (t) => error(lo, t));
    if (lowest < 0) lo = -bestThreshold(-lowest, (t) => error(-t, hi));
    if (lowest === 0 || highest === 0) break;
  }
  return { min: Math.max(lo, e.min), max: Math.min(hi, e.max) };
}

/** The threshold in (0, extreme] with the least `cost`: a coarse sweep, then a finer one around the best. */
function bestThreshold(extreme: number, cost: (t: number) => number): number {
  const coarse = 64,
    fine = 32;
  let best = extreme,
    bestCost = cost(extreme);
  const consider = (t: number) => {
    const c = cost(t);
    if (c < bestCost) {
      bestCost = c;
      best = t;
    }
  };
  const step = extreme / coarse;
  for (let k = 1; k < coarse; k++) consider(k * step);
  const around = best;
  for (let k = -fine; k <= fine; k++) if (k !== 0) consider(around + (k * step) / fine);
  return Math.min(best, extreme);
}

/** A histogram's non-empty bins: their edges and counts. */
interface Bins {
  lower: Float64Array;
  upper: Float64Array;
  counts: Float64Array;
}

function binsOf(h: Histogram): Bins {
  const width = h.absMax / (HISTOGRAM_BINS / 2);
  // Exact zeros have no error on any grid (each holds 0 exactly): left out.
  const counts = Float64Array.from(h.counts);
  counts[HISTOGRAM_BINS / 2]! -= h.zeros;
  const filled: number[] = [];
  counts.forEach((c, i) => {
    if (c > 0) filled.push(i);
  });
  const lower = new Float64Array(filled.length),
    upper = new Float64Array(filled.length),
    filledCounts = new Float64Array(filled.length);
  filled.forEach((bin, k) => {
    lower[k] = (bin - HISTOGRAM_BINS / 2) * width;
    upper[k] = lower[k]! + width;
    filledCounts[k] = counts[bin]!;
  });
  return { lower, upper, counts: filledCounts };
}

/** The summed squared error of the bins' values on the grid of `params` (codes range.min … range.max). */
function gridError(bins: Bins, params: { scale: number; zeroPoint: number }, range: IntRange): number {
  const s = params.scale,
    start = (range.min - params.zeroPoint) * s,
    steps = range.max - range.min;
  let total = 0;
  for (let k = 0; k < bins.counts.length; k++) {
    const a = (bins.lower[k]! - start) / s,
      b = (bins.upper[k]! - start) / s;
    total += (bins.counts[k]! * (squaredErrorIntegral(b, steps) - squaredErrorIntegral(a, steps))) / (b - a);
  }
  return total * s * s;
}

/**
 * ∫₀ᵘ e(v)² dv for the rounding error e of a grid with codes at 0, 1, … steps (in units of its step):
 * inside, each code's half-open cell [m − ½, m + ½) adds 1/12 and the part of the current cell up to u
 * adds (u − m)³/3; below 0 and above `steps` the error is the distance to the end code (clipping).
 */
export function squaredErrorIntegral(u: number, steps: number): number {
  if (u <= 0) return (u * u * u) / 3;
  if (u >= steps) {
    const d = u - steps;
    return steps / 12 + (d * d * d) / 3;
  }
  const m = Math.floor(u + 0.5),
    d = u - m;
  return m / 12 + (d * d * d) / 3;
}
