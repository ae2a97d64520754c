import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../src/conformance/round-trip.js';
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

  it('a folder with no model.onnx, or a file, is an input error, not an empty success', () => {
    const empty = mkdtempSync(join(tmpdir(), 'onnxpress-empty-'));
    try {
      const r = cli(['conformance', empty]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(/no models under it/);
      const f = cli(['conformance', fixture('digits', 'model.onnx')]);
      expect(f.code).toBe(1);
      expect(f.stderr.trim()).toMatch(/^onnxpress: .*: not a folder/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
