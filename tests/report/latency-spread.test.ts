// The spread of the latency ratio (issue 21 item 5): per alternating run i, r_i = compressed_i /
// reference_i, its 10th and 90th percentiles (nearest rank) in the report, and warnings when the
// spread crosses 1 or there are fewer than 10 runs.
import { describe, expect, it } from 'vitest';
import { latencyWarnings } from '../../src/report/evaluate.js';
import { ratioSpread } from '../../src/report/metrics.js';
import { cli, fixture } from '../helpers.js';

describe('ratioSpread', () => {
  it('five runs, by hand: ratios 0.5, 1.5, 1, 0.5, 3; p10 the 1st smallest (rank ⌈0.5⌉), p90 the 5th (rank ⌈4.5⌉)', () => {
    const s = ratioSpread([2, 4, 5, 10, 1], [1, 6, 5, 5, 3]);
    expect(s.ratios).toEqual([0.5, 1.5, 1, 0.5, 3]);
    expect(s.p10).toBe(0.5);
    expect(s.p90).toBe(3);
  });

  it('twenty runs, by hand: ratios k/4 for k = 1..20 in a scrambled order; p10 the 2nd (0.5), p90 the 18th (4.5)', () => {
    const ks = [7, 19, 2, 13, 5, 20, 11, 1, 16, 9, 4, 18, 14, 3, 8, 12, 17, 6, 15, 10];
    const s = ratioSpread(
      ks.map(() => 4),
      ks.map((k) => k),
    );
    expect(s.p10).toBe(0.5);
    expect(s.p90).toBe(4.5);
  });

  it('a run whose reference time is 0 has no ratio; none left is NaN; runs must pair up', () => {
    expect(ratioSpread([0, 2], [1, 3])).toEqual({ p10: 1.5, p90: 1.5, ratios: [1.5] });
    expect(ratioSpread([0], [1]).p10).toBeNaN();
    expect(() => ratioSpread([1, 2], [1])).toThrow(/2 reference runs for 1 compressed runs/);
  });
});

describe('latencyWarnings', () => {
  it('a spread crossing 1.0, and fewer than 10 runs', () => {
    expect(latencyWarnings(20, { p10: 0.9, p90: 1.2 })).toEqual([
      'the spread of the ratio crosses 1.0 (p10 0.90×, p90 1.20×): the difference is within the noise',
    ]);
    expect(latencyWarnings(20, { p10: 1.05, p90: 1.2 })).toEqual([]);
    expect(latencyWarnings(20, { p10: 0.5, p90: 0.95 })).toEqual([]);
    expect(latencyWarnings(9, { p10: 1.05, p90: 1.2 })).toEqual([
      'fewer than 10 runs (9): the ratio and its spread are rough; give --runs 10 or more',
    ]);
    expect(latencyWarnings(10, { p10: 1.05, p90: 1.2 })).toEqual([]);
  });
});

describe('the report', () => {
  const DIGITS = fixture('digits', 'model.onnx');
  const run = (runs: string) => {
    const r = cli(['eval', DIGITS, '--reference', DIGITS, '--json', '--runs', runs, '--no-gzip']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout).latency;
  };

  it('has ratioP10, ratioP90 and warnings; --runs 3 warns of too few runs', () => {
    const latency = run('3');
    expect(typeof latency.ratioP10).toBe('number');
    expect(typeof latency.ratioP90).toBe('number');
    expect(latency.ratioP10).toBeGreaterThan(0);
    expect(latency.ratioP10).toBeLessThanOrEqual(latency.ratioP90);
    expect(latency.warnings).toContain('fewer than 10 runs (3): the ratio and its spread are rough; give --runs 10 or more');
  });

  it('with 12 runs: no few-runs warning, and the crossing warning exactly when p10 < 1 < p90', () => {
    const latency = run('12');
    expect(latency.warnings.some((w: string) => w.startsWith('fewer than'))).toBe(false);
    const crosses = latency.ratioP10 < 1 && latency.ratioP90 > 1;
    expect(latency.warnings.some((w: string) => w.startsWith('the spread of the ratio crosses 1.0'))).toBe(crosses);
  });
});
