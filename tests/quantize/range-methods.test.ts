// The calibration methods' arithmetic on values whose answer is known.
import { describe, expect, it } from 'vitest';
import { addExtremes, emptyExtremes, entropyRange, Histogram, percentileRange } from '../../src/quantize/range-methods.js';
import { seededRandom } from '../../src/kernels/random.js';

function stats(values: Float32Array) {
  const e = emptyExtremes();
  addExtremes(e, values);
  const h = new Histogram(Math.max(Math.abs(e.min), Math.abs(e.max)));
  h.add(values);
  return { e, h };
}

/** Normal values (seeded), with a few far outliers. */
function normalWithOutliers(n: number, outliers: number[]): Float32Array {
  const random = seededRandom(7);
  const out = Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
  outliers.forEach((v, i) => {
    out[i * 97] = v;
  });
  return out;
}

describe('activation range methods', () => {
  it("extremes skip non-finite values (an attention mask's −∞)", () => {
    const e = emptyExtremes();
    addExtremes(e, Float32Array.of(-Infinity, 2, -3, NaN, 5));
    expect(e).toEqual({ min: -3, max: 5, count: 3 });
  });

  it('percentile keeps the share asked and cuts the outliers', () => {
    const { e, h } = stats(normalWithOutliers(200_000, [40, -35]));
    const symmetric = percentileRange(h, e, 99.9, true);
    // |x| of a standard normal: 99.9 % lie within 3.29.
    expect(symmetric.max).toBeCloseTo(3.29, 1);
    expect(symmetric.min).toBe(-symmetric.max);
    const asymmetric = percentileRange(h, e, 99.9, false);
    // 0.05 % in each tail: ±3.29 as well for a normal.
    expect(asymmetric.max).toBeCloseTo(3.29, 1);
    expect(asymmetric.min).toBeCloseTo(-3.29, 1);
    // 100 % is the extremes.
    expect(percentileRange(h, e, 100, false)).toEqual({ min: -35, max: 40 });
  });

  it('entropy clips a long-tailed distribution well inside its extremes, and keeps a uniform one whole', () => {
    const { e, h } = stats(normalWithOutliers(200_000, [60, -50]));
    const clipped = entropyRange(h, e, 128);
    expect(clipped.max).toBeLessThan(10);
    expect(clipped.max).toBeGreaterThan(2.5);
    const random = seededRandom(3);
    const uniform = Float32Array.from({ length: 100_000 }, () => random() * 8);
    const u = stats(uniform);
    const kept = entropyRange(u.h, u.e, 256);
    expect(kept.min).toBeGreaterThanOrEqual(0);
    expect(kept.max).toBeGreaterThan(0.97 * u.e.max);
  });
});
