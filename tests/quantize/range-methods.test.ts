// The calibration methods' arithmetic on values whose answer is known.
import { describe, expect, it } from 'vitest';
import { addExtremes, emptyExtremes } from '../../src/kernels/activation-stats.js';
import { INT8, type IntRange, UINT8, groupParams } from '../../src/kernels/quantize.js';
import { entropyRange, Histogram, mseRange, percentileRange, squaredErrorIntegral } from '../../src/quantize/range-methods.js';
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

  it("leaves a Relu's exact zeros out: their spike in the first bin made KL clip at a quarter of the extremes", () => {
    const random = seededRandom(9);
    const relu = Float32Array.from({ length: 200_000 }, () =>
      Math.max(0, Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())),
    );
    const { e, h } = stats(relu);
    expect(h.zeros).toBeGreaterThan(90_000);
    // Measured: 3.81 of the extremes' 4.14; with the zeros counted, 1.55.
    expect(entropyRange(h, e, 256).max).toBeGreaterThan(2.5);
  });
});

/** Mean squared error of `values` quantized on the grid groupParams makes of [lo, hi], rounding and clipping as QuantizeLinear. */
function sampleMse(values: Float32Array, lo: number, hi: number, range: IntRange, symmetric: boolean): number {
  const { scale, zeroPoint } = groupParams(lo, hi, range, symmetric);
  let sum = 0;
  for (const x of values) {
    const q = Math.min(range.max, Math.max(range.min, Math.round(x / scale) + zeroPoint));
    const d = (q - zeroPoint) * scale - x;
    sum += d * d;
  }
  return sum / values.length;
}

/** The least sampleMse over `candidates` (brute force), and where. */
function bruteForce(values: Float32Array, candidates: [number, number][], range: IntRange, symmetric: boolean) {
  let best = { lo: 0, hi: 0, mse: Infinity };
  for (const [lo, hi] of candidates) {
    const mse = sampleMse(values, lo, hi, range, symmetric);
    if (mse < best.mse) best = { lo, hi, mse };
  }
  return best;
}

describe('method=mse', () => {
  it('squaredErrorIntegral is the integral of the squared rounding and clipping error', () => {
    const steps = 10;
    const error = (v: number) => (v < 0 ? v : v > steps ? v - steps : v - Math.round(v));
    for (const u of [-2.3, -0.2, 0, 0.3, 0.5, 0.7, 3.49, 3.51, 9.9, 10, 11.7]) {
      // Midpoint rule from 0 to u (signed for u < 0).
      const n = 200_000,
        h = u / n;
      let sum = 0;
      for (let k = 0; k < n; k++) sum += error((k + 0.5) * h) ** 2 * h;
      expect(squaredErrorIntegral(u, steps)).toBeCloseTo(sum, 6);
    }
  });

  it('finds the symmetric int8 threshold that a brute-force search over the samples finds', () => {
    const values = normalWithOutliers(100_000, []);
    const { e, h } = stats(values);
    const chosen = mseRange(h, e, INT8, true);
    expect(chosen.min).toBe(-chosen.max);
    const oracle = bruteForce(
      values,
      Array.from({ length: 100 }, (_, k): [number, number] => [-(3 + k * 0.02), 3 + k * 0.02]),
      INT8,
      true,
    );
    // A standard normal's 8-bit optimum clips near 4σ (by the closed-form error, ACIQ, Banner et al. 2019), inside the extremes.
    expect(oracle.hi).toBeGreaterThan(3.6);
    expect(oracle.hi).toBeLessThan(4.5);
    expect(chosen.max).toBeGreaterThan(3.6);
    expect(chosen.max).toBeLessThan(Math.min(4.5, e.max));
    // As good as the oracle's threshold on the samples themselves, within 1 %.
    expect(sampleMse(values, chosen.min, chosen.max, INT8, true)).toBeLessThan(oracle.mse * 1.01);
  });

  it('keeps far outliers, whose clipping would cost more than all the rounding', () => {
    const { e, h } = stats(normalWithOutliers(100_000, [40, -35]));
    expect(mseRange(h, e, INT8, true).max).toBeGreaterThan(25);
  });

  it('matches a brute-force search over both ends for skewed values of both signs (uint8 asymmetric)', () => {
    const random = seededRandom(11);
    // A GELU-like activation: mostly small negatives, a long positive tail.
    const values = Float32Array.from({ length: 20_000 }, () => {
      const x = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      return x > 0 ? x * x * 2 : x * 0.1;
    });
    const { e, h } = stats(values);
    const chosen = mseRange(h, e, UINT8, false);
    const grid: [number, number][] = [];
    for (let i = 1; i <= 20; i++) for (let j = 1; j <= 50; j++) grid.push([(e.min * i) / 20, (e.max * j) / 50]);
    const oracle = bruteForce(values, grid, UINT8, false);
    expect(chosen.max).toBeLessThan(e.max);
    expect(sampleMse(values, chosen.min, chosen.max, UINT8, false)).toBeLessThan(oracle.mse * 1.01);
  });

  it('keeps the whole range of uniform values, which clipping only harms', () => {
    const random = seededRandom(5);
    const values = Float32Array.from({ length: 100_000 }, () => random() * 8);
    const { e, h } = stats(values);
    const kept = mseRange(h, e, UINT8, false);
    expect(kept.min).toBe(e.min > 0 ? e.min : kept.min);
    expect(kept.max).toBeGreaterThan(0.98 * e.max);
  });
});
