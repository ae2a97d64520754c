import { describe, expect, it } from 'vitest';
import { evenlySpaced } from '../../src/share/codebook.js';
import { gramMatrix, groupCost, planGroups } from '../../src/share/group.js';
import { kmeans1d } from '../../src/kernels/kmeans.js';
import { noise } from './helpers.js';

const options = { k: 16, seed: 0, maxIterations: 100, keepZero: true };

describe('1-D k-means', () => {
  it('keeps every value when there are no more distinct values than centroids', () => {
    const values = Float32Array.of(0.5, -1, 0.5, 2, -1, 0);
    const r = kmeans1d(values, { ...options, k: 4 });
    expect(Array.from(r.centroids)).toEqual([-1, 0, 0.5, 2]);
    expect(Array.from(r.codes, (c) => r.centroids[c])).toEqual(Array.from(values));
  });

  it('finds well-separated clusters and assigns each value its nearest centroid', () => {
    const n = noise(3000, 1);
    const values = n.map((x, i) => [-5, 1, 10][i % 3]! + 0.1 * x);
    const r = kmeans1d(values, { ...options, k: 3, keepZero: false });
    expect(r.centroids).toHaveLength(3);
    for (const [j, m] of [-5, 1, 10].entries()) expect(Math.abs(r.centroids[j]! - m)).toBeLessThan(0.02);
    values.forEach((x, i) => {
      const own = Math.abs(x - r.centroids[r.codes[i]!]!);
      for (const c of r.centroids) expect(own).toBeLessThanOrEqual(Math.abs(x - c));
    });
  });

  it('pins a centroid at exactly 0 when the values hold zeros', () => {
    const values = noise(5000, 2).map((x, i) => (i % 3 === 0 ? 0 : x + 0.3));
    const r = kmeans1d(values, options);
    const zero = r.centroids.indexOf(0);
    expect(zero).toBeGreaterThanOrEqual(0);
    values.forEach((x, i) => {
      if (x === 0) expect(r.codes[i]).toBe(zero);
    });
    expect(r.centroids.length).toBeLessThanOrEqual(16);
  });

  it('is deterministic for a seed, and beats evenly spaced levels on normal values', () => {
    const values = noise(20000, 3);
    const a = kmeans1d(values, options),
      b = kmeans1d(values, options);
    expect(Array.from(a.centroids)).toEqual(Array.from(b.centroids));
    expect(Buffer.compare(Buffer.from(a.codes), Buffer.from(b.codes))).toBe(0);
    const sse = (f: (x: number) => number) => values.reduce((s, x) => s + (x - f(x)) ** 2, 0);
    const max = values.reduce((m, x) => Math.max(m, Math.abs(x)), 0),
      step = (2 * max) / 15;
    const uniform = sse((x) => Math.round((x + max) / step) * step - max);
    const clustered = sse((x) => {
      let best = a.centroids[0]!;
      for (const c of a.centroids) if (Math.abs(x - c) < Math.abs(x - best)) best = c;
      return best;
    });
    // Measured: k-means has 0.33 of the squared error of 16 evenly spaced levels over the range.
    expect(clustered).toBeLessThan(uniform * 0.5);
  });

  it('fits tensors over 2²⁰ values on their order statistics, and still assigns every value', () => {
    const values = noise(1_500_000, 7).map((x, i) => (i % 10 === 0 ? 0 : x));
    const r = kmeans1d(values, { ...options, k: 256 });
    expect(r.centroids.length).toBe(256);
    expect(r.codes).toHaveLength(values.length);
    const zero = r.centroids.indexOf(0);
    for (let i = 0; i < values.length; i += 10) expect(r.codes[i]).toBe(zero);
    let errSq = 0,
      refSq = 0;
    values.forEach((x, i) => {
      errSq += (x - r.centroids[r.codes[i]!]!) ** 2;
      refSq += x * x;
    });
    // Measured: relative RMS error 0.0066, in about 0.4 s.
    expect(Math.sqrt(errSq / refSq)).toBeLessThan(0.01);
  });
});

describe('evenly spaced centroids', () => {
  it('recognises a lattice DequantizeLinear reproduces exactly, and refuses others', () => {
    const s = 2 ** -5;
    expect(
      evenlySpaced(
        Float32Array.from([-3, -1, 0, 2, 5], (t) => t * s),
        15,
      ),
    ).toEqual({ scale: s, zeroPoint: 3, codes: [0, 2, 3, 5, 8] });
    expect(evenlySpaced(Float32Array.of(0.1, 0.25, 0.3), 255)).toBeUndefined();
    expect(
      evenlySpaced(
        Float32Array.from([0, 1, 20], (t) => t * s),
        15,
      ),
    ).toBeUndefined(); // 20 steps need more than 4 bits
  });
});

describe('grouping from dot products', () => {
  it('computes member and mean errors as a direct computation would', () => {
    const a = noise(500, 4),
      b = a.map((x, i) => x + 0.1 * noise(500, 5)[i]!),
      c = noise(500, 6);
    const g = gramMatrix([a, b, c]);
    const rel = (x: Float32Array, y: ArrayLike<number>) =>
      Math.sqrt(x.reduce((s, v, i) => s + (v - y[i]!) ** 2, 0) / x.reduce((s, v) => s + v * v, 0));
    const mean = a.map((x, i) => (x + b[i]!) / 2);
    expect(groupCost(g, 3, [0, 1])).toBeCloseTo(Math.min(Math.max(rel(a, mean), rel(b, mean)), rel(b, a), rel(a, b)), 6);
    expect(planGroups(g, 3, { tolerance: 0.1 }).groups).toEqual([[0, 1]]);
    expect(planGroups(g, 3, { tolerance: 0.01 }).groups).toEqual([]);
    expect(planGroups(g, 3, { count: 1 }).groups).toEqual([[0, 1, 2]]);
  });
});
