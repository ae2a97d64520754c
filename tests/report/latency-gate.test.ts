// --max-latency-ratio: a CI gate on the measured latency ratio. Timing is noisy, so the CLI cases use
// thresholds no run can cross the wrong way (a model against itself: about 1×); the arithmetic is
// checked on a report with known figures.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkGates, type Report } from '../../src/report/report.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();
const MLP = fixture('mlp', 'model.onnx');
const DATA = ['--data', fixture('mlp', 'test_data_set_0')];

function withLatency(ratio: number): Report {
  const latency = {
    threads: 1,
    runs: 20,
    warmup: 3,
    batch: '360',
    reference: { meanMs: 2, p90Ms: 2.2 },
    compressed: { meanMs: 2 * ratio, p90Ms: 2.4 * ratio },
    ratio,
    ratioP10: ratio * 0.9,
    ratioP90: ratio * 1.1,
    warnings: [],
  };
  return { latency } as unknown as Report;
}

describe('--max-latency-ratio', () => {
  it('passes at or below the ratio and fails above it, saying by how much', () => {
    const [within] = checkGates(withLatency(0.8), { maxLatencyRatio: 0.8 });
    expect(within).toMatchObject({ gate: 'max-latency-ratio', passed: true, threshold: 0.8, actual: 0.8 });
    const [over] = checkGates(withLatency(1.25), { maxLatencyRatio: 1.1 });
    expect(over!.passed).toBe(false);
    expect(over!.message).toBe('mean latency 2.000 → 2.500 ms, 1.250× (p10–p90 1.13–1.38×, 20 runs) exceeds the allowed 1.1×');
  });

  it('eval: a model against itself passes a loose gate (exit 0) and fails one no run can meet (exit 3)', () => {
    const loose = cli(['eval', MLP, '--reference', MLP, ...DATA, '--runs', '5', '--max-latency-ratio', '100', '--json']);
    expect(loose.code, loose.stderr).toBe(0);
    expect(JSON.parse(loose.stdout).gates).toEqual([expect.objectContaining({ gate: 'max-latency-ratio', passed: true, threshold: 100 })]);
    const strict = cli(['eval', MLP, '--reference', MLP, ...DATA, '--runs', '5', '--max-latency-ratio', '0.01']);
    expect(strict.code).toBe(3);
    expect(strict.stderr).toMatch(
      /gate max-latency-ratio failed: mean latency .* ms, .*× \(p10–p90 .*, 5 runs\) exceeds the allowed 0\.01×/,
    );
  });

  it('compress --eval: the output and the report are written, exit 3; the recipe records the gate', () => {
    const out = join(dir, 'gated.onnx'),
      report = join(dir, 'gated.json');
    const r = cli([
      'compress',
      MLP,
      '-o',
      out,
      '--quantize',
      'int8',
      '--eval',
      ...DATA,
      '--runs',
      '5',
      '--max-latency-ratio',
      '0.01',
      '--report',
      report,
    ]);
    expect(r.code).toBe(3);
    expect(existsSync(out)).toBe(true);
    expect(existsSync(report)).toBe(true);
    const recipe = join(dir, 'recipe.yaml');
    writeFileSync(
      recipe,
      `passes:\n  - quantize: int8\neval:\n  data: ${fixture('mlp', 'test_data_set_0')}\n  runs: 5\ngates:\n  max-latency-ratio: 100\n`,
    );
    const fromRecipe = cli(['compress', MLP, '-o', join(dir, 'recipe.onnx'), '--recipe', recipe, '--json']);
    expect(fromRecipe.code, fromRecipe.stderr).toBe(0);
    const json = JSON.parse(fromRecipe.stdout);
    expect(json.gates[0]).toMatchObject({ gate: 'max-latency-ratio', passed: true });
    expect(json.recipe.gates).toEqual({ 'max-latency-ratio': 100 });
  });

  it('usage errors before anything is read: no timed runs, no --eval, not a positive number', () => {
    const missing = join(dir, 'no-such.onnx');
    for (const args of [
      ['eval', missing, '--reference', missing, '--runs', '0', '--max-latency-ratio', '1.2'],
      ['compress', missing, '-o', join(dir, 'x.onnx'), '--quantize', 'int8', '--max-latency-ratio', '1.2'],
      ['eval', missing, '--reference', missing, '--max-latency-ratio', '0'],
    ]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(cli(['eval', missing, '--reference', missing, '--runs', '0', '--max-latency-ratio', '1.2']).stderr).toMatch(
      /--max-latency-ratio needs timed runs: --runs must be at least 1/,
    );
  });
});
