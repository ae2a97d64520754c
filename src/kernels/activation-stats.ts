// Streaming statistics of activations, the part of static calibration that sees the values: a
// running min/max per value, then counts over [−A, A] in equal bins (A = the largest magnitude
// seen). They are kept where ONNX Runtime runs (runtime/child.ts) so that activations never leave
// that process, and merged by plain addition, so that any split of the data into batches gives the
// same statistics.

/** Bins of a value's histogram over [−A, A]: 2048 on each side of zero, as TensorRT's calibrator uses. */
export const HISTOGRAM_BINS = 4096;

/**
 * A histogram's storage: its HISTOGRAM_BINS counts, then the count of elements exactly 0 (also in
 * their bin). A Relu's output is half zeros, which any grid holds exactly (its zero point).
 */
export const HISTOGRAM_SLOTS = HISTOGRAM_BINS + 1;

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

/** `from` added to `into`. */
export function mergeExtremes(into: Extremes, from: Extremes): void {
  into.min = Math.min(into.min, from.min);
  into.max = Math.max(into.max, from.max);
  into.count += from.count;
}

/**
 * Adds the finite values of `data` to `slots` (HISTOGRAM_SLOTS): HISTOGRAM_BINS equal bins over
 * [−absMax, absMax] (the ends take what lies beyond), then the exact zeros.
 */
export function addToHistogram(slots: Float64Array, absMax: number, data: Float32Array): void {
  if (!(absMax > 0)) return;
  const half = HISTOGRAM_BINS / 2,
    perUnit = half / absMax,
    last = HISTOGRAM_BINS - 1;
  let zeros = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) continue;
    if (v === 0) zeros++;
    let bin = Math.floor(v * perUnit) + half;
    if (bin < 0) bin = 0;
    else if (bin > last) bin = last;
    slots[bin]! += 1;
  }
  slots[HISTOGRAM_BINS]! += zeros;
}
