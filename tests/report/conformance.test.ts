import { describe, expect, it } from 'vitest';
import { runConformance } from '../../src/report/conformance.js';
import { cli, fixture } from '../helpers.js';

describe('conformance', () => {
  it('round-trips every conformance fixture: byte-identical files whose outputs match the original exactly in ONNX Runtime', async () => {
    const report = await runConformance(fixture('conformance'));
    expect(report.cases.length).toBeGreaterThanOrEqual(13);
    expect(report.failed).toBe(0);
    expect(report.skipped).toBe(0);
    for (const c of report.cases) {
      expect(c.sets, c.model).toBeGreaterThan(0);
      if (c.model !== 'external') expect(c.identical, c.model).toBe(true);
    }
  });

  it('the CLI prints a plain "N passed, N failed" line', () => {
    const r = cli(['conformance', fixture('conformance')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed/m);
  });
});
