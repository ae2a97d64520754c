import { describe, expect, it } from 'vitest';
import { FidelityAccumulator, PerplexityAccumulator, argmaxRows, classification, latencyStats } from '../../src/report/metrics.js';
import { sparsity, weightError } from '../../src/kernels/weight-error.js';

describe('metrics', () => {
  it('fidelity of identical outputs: no error, cosine 1, infinite SNR', () => {
    const acc = new FidelityAccumulator();
    acc.add([1, -2, 3], [1, -2, 3]);
    expect(acc.result()).toEqual({ maxAbsError: 0, meanAbsError: 0, cosine: 1, snrDb: Infinity, count: 3 });
  });

  it('fidelity over batches matches the formulas', () => {
    const acc = new FidelityAccumulator();
    acc.add([3, 4], [3, 4.5]);
    acc.add([0], [-0.5]);
    const r = acc.result();
    expect(r.maxAbsError).toBe(0.5);
    expect(r.meanAbsError).toBeCloseTo(1 / 3, 12);
    expect(r.cosine).toBeCloseTo((9 + 18) / (5 * Math.sqrt(9 + 20.25 + 0.25)), 12);
    expect(r.snrDb).toBeCloseTo(10 * Math.log10(25 / 0.5), 12);
  });

  it('a NaN where the reference has a number makes the error unbounded', () => {
    const acc = new FidelityAccumulator();
    acc.add([1, 2], [1, NaN]);
    expect(acc.result().maxAbsError).toBe(Infinity);
  });

  it('top-1 and macro F1', () => {
    expect(argmaxRows([0.1, 0.9, 0.8, 0.2], 2)).toEqual(Int32Array.of(1, 0));
    const r = classification([0, 1, 1, 2], [0, 1, 2, 2]);
    expect(r.top1).toBe(0.75);
    // class 0: F1 1; class 1: tp 1, fp 1 → 2/3; class 2: tp 1, fn 1 → 2/3
    expect(r.macroF1).toBeCloseTo((1 + 2 / 3 + 2 / 3) / 3, 12);
  });

  it('perplexity of uniform logits is the vocabulary size; ignored targets are skipped', () => {
    const acc = new PerplexityAccumulator();
    acc.add(new Float32Array(4 * 10), 10, [1, 2, -100, 9]);
    const r = acc.result();
    expect(r.tokens).toBe(3);
    expect(r.perplexity).toBeCloseTo(10, 5);
  });

  it('latency mean and nearest-rank p90', () => {
    expect(latencyStats([5, 1, 2, 3, 4, 6, 7, 8, 9, 10])).toEqual({ meanMs: 5.5, p90Ms: 9, runs: 10 });
  });

  it('weight error and sparsity', () => {
    expect(weightError([3, 4], [3, 4])).toEqual({ maxAbsError: 0, relRmsError: 0 });
    const e = weightError([3, 4], [3, 3]);
    expect(e.maxAbsError).toBe(1);
    expect(e.relRmsError).toBeCloseTo(1 / 5, 12);
    expect(sparsity([0, 1, 0, 2])).toBe(0.5);
  });
});
