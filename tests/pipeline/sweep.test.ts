import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGrid } from '../../src/sweep/grid.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const GRID = 'quantize=int8,int4:block=32; prune=none,magnitude:sparsity=0.3,magnitude:sparsity=0.5';
const DATA = ['--data', fixture('digits', 'test_data_set_0'), '--labels', fixture('digits', 'labels.txt'), '--runs', '0'];

interface Row {
  id: string;
  label: string;
  recipe: unknown;
  output: { bytes: number };
  accuracy: { compressed: number; drop: number };
  pareto: boolean;
}
const strip = (rows: Row[]) =>
  rows.map((r) => ({ id: r.id, label: r.label, bytes: r.output.bytes, accuracy: r.accuracy, pareto: r.pareto }));

describe('sweep', () => {
  it('parses grids, with options that contain commas', () => {
    expect(parseGrid('quantize=int8,int4:block=32,symmetric=false,int4:block=128; prune=none,nm')).toEqual([
      { family: 'quantize', choices: ['int8', 'int4:block=32,symmetric=false', 'int4:block=128'] },
      { family: 'prune', choices: [undefined, 'nm'] },
    ]);
  });

  it('6 combinations: a table sorted by size whose rows match individual compress runs, Pareto rows marked', () => {
    const reportPath = join(dir, 'sweep.json');
    const r = cli([
      'sweep',
      DIGITS,
      '--grid',
      GRID,
      ...DATA,
      '--jobs',
      '2',
      '--out',
      join(dir, 'sweep'),
      '--report',
      reportPath,
      '--report',
      join(dir, 'sweep.html'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/6 combinations/);
    const report = JSON.parse(readFileSync(reportPath, 'utf8'));
    const rows: Row[] = report.rows;
    expect(rows).toHaveLength(6);
    expect(rows.map((x) => x.output.bytes)).toEqual([...rows.map((x) => x.output.bytes)].sort((a, b) => a - b));
    expect(rows.some((x) => x.pareto)).toBe(true);
    // Every row is what `compress --recipe` of its recipe gives.
    for (const row of rows.filter((_, i) => i % 2 === 0)) {
      const recipe = join(dir, `${row.id}.recipe.json`);
      writeFileSync(recipe, JSON.stringify(row.recipe));
      const single = JSON.parse(cli(['compress', DIGITS, '-o', join(dir, `${row.id}-single.onnx`), '--recipe', recipe, '--json']).stdout);
      expect(single.output.bytes).toBe(row.output.bytes);
      expect(single.accuracy.compressed).toBe(row.accuracy.compressed);
      expect(Buffer.compare(readFileSync(join(dir, `${row.id}-single.onnx`)), readFileSync(join(dir, 'sweep', `${row.id}.onnx`)))).toBe(0);
    }
    // Pruning runs before quantization in every combination.
    expect(rows.find((x) => x.label.includes('sparsity=0.5') && x.label.includes('int8'))!.label).toBe(
      'prune magnitude:sparsity=0.5 + quantize int8',
    );
    expect(readFileSync(join(dir, 'sweep.html'), 'utf8')).toContain('<svg');
  });

  it('--plan lists the jobs; two shards merged give the same table as one sweep', () => {
    const plan = JSON.parse(cli(['sweep', DIGITS, '--grid', GRID, ...DATA, '--plan']).stdout);
    expect(plan.jobs).toHaveLength(6);
    const whole = join(dir, 'whole.json'),
      a = join(dir, 'a.json'),
      b = join(dir, 'b.json'),
      merged = join(dir, 'merged.json');
    expect(cli(['sweep', DIGITS, '--grid', GRID, ...DATA, '--report', whole]).code).toBe(0);
    expect(cli(['sweep', DIGITS, '--grid', GRID, ...DATA, '--shard', '1/2', '--report', a]).code).toBe(0);
    expect(cli(['sweep', DIGITS, '--grid', GRID, ...DATA, '--shard', '2/2', '--report', b]).code).toBe(0);
    expect(JSON.parse(readFileSync(a, 'utf8')).rows).toHaveLength(3);
    const ok = cli(['merge', a, b, '--report', merged]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toBe('');
    expect(strip(JSON.parse(readFileSync(merged, 'utf8')).rows)).toEqual(strip(JSON.parse(readFileSync(whole, 'utf8')).rows));
    // A shard missing or given twice: a warning, and with --strict a failure (exit 3) that writes nothing.
    const missing = cli(['merge', a]);
    expect(missing.code).toBe(0);
    expect(missing.stderr.trim()).toBe('onnxpress: warning: the reports are not one whole sweep: shard 2/2 missing');
    const twice = cli(['merge', a, a, b, '--strict', '--report', join(dir, 'strict.json')]);
    expect(twice.code).toBe(3);
    expect(twice.stderr.trim()).toBe('onnxpress: the reports are not one whole sweep: shard 1/2 given more than once');
    expect(existsSync(join(dir, 'strict.json'))).toBe(false);
  });

  it('refuses a bad grid before running anything', () => {
    expect(cli(['sweep', DIGITS, '--grid', 'quantise=int8']).code).toBe(2);
    expect(cli(['sweep', DIGITS, '--grid', 'quantize=int9']).code).toBe(2);
    expect(cli(['sweep', DIGITS, '--grid', 'quantize=int8', '--shard', '3/2']).code).toBe(2);
  });
});
