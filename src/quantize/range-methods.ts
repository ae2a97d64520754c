// How a calibrated activation range is chosen from what was seen: the extremes (minmax), a
// percentile of the values, or the clipping threshold whose 8-bit distribution is closest to the
// values' own by KL divergence (entropy, as TensorRT and ONNX Runtime do it). The statistics stream:
// a running min/max per value, then a histogram over [−A, A] (A = the largest magnitude seen), so
// that memory holds a few thousand counts per value, never the activations themselves.

/** Bins of a value's histogram over [−A, A]: 2048 on each side of zero, as TensorRT's calibrator uses. */
export const HISTOGRAM_BINS = 4096;

export interface Extremes {
  min: number;
  max: number;
  /** Finite elements seen. */
  count: number;
}

export function emptyExtremes(): Extremes {
  return { min: Infinity, max: -Infinity, count: 0 };
}

/** Adds the finite values of `data` to `e` (an attention mask's −∞ is not part of any range). */
export function addExtremes(e: Extremes, data: Float32Array): void {
  let min = e.min,
    max = e.max,
    count = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    count++;
  }
  e.min = min;
  e.max = max;
  e.count += count;
}

/** Counts of a value's elements over [−absMax, absMax] in HISTOGRAM_BINS equal bins. */
export class Histogram {
  readonly counts = new Float64Array(HISTOGRAM_BINS);

  constructor(readonly absMax: number) {}

  add(data: Float32Array): void {
    const a = this.absMax;
    if (!(a > 0)) return;
    const counts = this.counts,
      half = HISTOGRAM_BINS / 2,
      perUnit = half / a;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v - v !== 0) continue;
      let bin = Math.floor(v * perUnit) + half;
      if (bin < 0) bin = 0;
      else if (bin >= HISTOGRAM_BINS) bin = HISTOGRAM_BINS - 1;
      counts[bin]! += 1;
    }
  }

  /** The counts of |x| over [0, absMax], HISTOGRAM_BINS / 2 bins. */
  magnitudes(): Float64Array {
    const half = HISTOGRAM_BINS / 2;
    const out = new Float64Array(half);
    for (let j = 0; j < half; j++) out[j] = this.counts[half + j]! + this.counts[half - 1 - j]!;
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
 * bins. Levels: 256 for values of one sign under asymmetric uint8/int8 (the whole code range lies
 * on that side), 128 otherwise.
 */
export function entropyRange(h: Histogram, e: Extremes, levels: number): Range {
  const m = h.magnitudes();
  const bins = m.length;
  const width = h.absMax / bins;
  let best = bins,
    bestKl = Infinity;
  const p = new Float64Array(bins),
    q = new Float64Array(bins);
  let beyond = 0;
  for (let i = 0; i < bins; i++) beyond += m[i]!;
  // Thresholds from `levels` bins up, each candidate taking one more bin: `beyond` counts what lies past it.
  for (let i = 0; i < levels && i < bins; i++) beyond -= m[i]!;
  for (let i = Math.min(levels, bins); i <= bins; i++) {
    if (i > levels) beyond -= m[i - 1]!;
    for (let k = 0; k < i; k++) p[k] = m[k]!;
    p[i - 1]! += beyond;
    for (let j = 0; j < levels; j++) {
      const start = Math.floor((j * i) / levels),
        end = Math.floor(((j + 1) * i) / levels);
      let total = 0,
        nonEmpty = 0;
      for (let k = start; k < end; k++) {
        total += m[k]!;
        if (m[k] !== 0) nonEmpty++;
      }
      const each = nonEmpty > 0 ? total / nonEmpty : 0;
      for (let k = start; k < end; k++) q[k] = m[k] !== 0 ? each : 0;
    }
    const kl = divergence(p, q, i);
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
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
