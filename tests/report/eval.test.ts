import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { readModel } from '../../src/io/read.js';
import { readTestDataSet } from '../../src/io/testdata.js';
import { floatValues } from '../../src/ir/tensor.js';
import { seededRandom } from '../../src/kernels/random.js';
import { argmaxRows } from '../../src/report/metrics.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const DIGITS_DATA = ['--data', fixture('digits', 'test_data_set_0'), '--labels', fixture('digits', 'labels.txt')];

/** A copy of the digits model with noise added to every weight matrix. */
function damagedDigits(scale: number): string {
  const model = readModel(DIGITS);
  const random = seededRandom(7);
  for (const t of model.graph.initializer) {
    if (t.dims.length < 2) continue;
    const values = Float32Array.from(floatValues(t));
    let rms = 0;
    for (const v of values) rms += v * v;
    rms = Math.sqrt(rms / values.length);
    for (let i = 0; i < values.length; i++) values[i]! += scale * rms * (random() * 2 - 1);
    t.raw_data = new Uint8Array(values.buffer);
  }
  const path = join(dir, `damaged-${scale}.onnx`);
  writeFileSync(path, encode('onnx.ModelProto', model.proto));
  return path;
}

describe('eval', () => {
  it('a model against itself: zero drop, cosine 1, the accuracy the fixture recorded', () => {
    const r = cli(['eval', DIGITS, '--reference', DIGITS, ...DIGITS_DATA, '--json', '--runs', '5']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const meta = JSON.parse(readFileSync(fixture('digits', 'meta.json'), 'utf8'));
    expect(report.version).toBe(1);
    expect(report.accuracy.metric).toBe('top1');
    expect(report.accuracy.reference).toBeCloseTo(meta.top1, 5);
    expect(report.accuracy.compressed).toBe(report.accuracy.reference);
    expect(report.accuracy.drop).toBe(0);
    expect(report.accuracy.data.samples).toBe(360);
    expect(report.accuracy.fidelity.logits.cosine).toBe(1);
    expect(report.accuracy.fidelity.logits.snrDb).toBe('Infinity');
    expect(report.sizeRatio).toBe(1);
    expect(report.latency.runs).toBe(5);
    expect(report.latency.reference.meanMs).toBeGreaterThan(0);
  });

  it('a damaged copy: the drop is measured, the gate fails with exit code 3, the report is still written', async () => {
    const damaged = damagedDigits(3);
    const reportPath = join(dir, 'damaged.json');
    const r = cli([
      'eval',
      damaged,
      '--reference',
      DIGITS,
      ...DIGITS_DATA,
      '--max-accuracy-drop',
      '0.001',
      '--report',
      reportPath,
      '--runs',
      '0',
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/gate max-accuracy-drop failed: top1 drop [\d.]+ exceeds the allowed 0.001/);
    const report = JSON.parse(readFileSync(reportPath, 'utf8'));
    expect(report.gates[0]).toMatchObject({ gate: 'max-accuracy-drop', passed: false });
    // The figure is what ONNX Runtime gives for the damaged model, recomputed here independently.
    const set = readTestDataSet(fixture('digits', 'test_data_set_0'));
    const session = await createSession(damaged);
    const [logits] = await run(session, [{ ...set.inputs[0]!, name: 'input' }]);
    const labels = readFileSync(fixture('digits', 'labels.txt'), 'utf8').trim().split('\n').map(Number);
    const predictions = argmaxRows(logits!.data as Float32Array, 10);
    const top1 = predictions.filter((p, i) => p === labels[i]).length / labels.length;
    expect(report.accuracy.compressed).toBeCloseTo(top1, 12);
    expect(report.accuracy.drop).toBeGreaterThan(0.001);
    expect(report.accuracy.fidelity.logits.cosine).toBeLessThan(1);
    const rows = report.tensors.filter((t: { relRmsError: number }) => t.relRmsError > 0);
    expect(rows.length).toBe(4);
  });

  it('a mildly damaged copy passes a loose gate with exit code 0', () => {
    const damaged = damagedDigits(0.01);
    const r = cli([
      'eval',
      damaged,
      '--reference',
      DIGITS,
      ...DIGITS_DATA,
      '--max-accuracy-drop',
      '0.05',
      '--min-cosine',
      '0.99',
      '--runs',
      '0',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.gates.map((g: { passed: boolean }) => g.passed)).toEqual([true, true]);
  });

  it('without data: synthesized seeded inputs and output fidelity', () => {
    const a = JSON.parse(
      cli([
        'eval',
        fixture('mlp', 'model.onnx'),
        '--reference',
        fixture('mlp', 'model.onnx'),
        '--dim',
        'N=3',
        '--json',
        '--runs',
        '0',
        '--no-gzip',
      ]).stdout,
    );
    expect(a.accuracy.metric).toBe('fidelity');
    expect(a.accuracy.data.kind).toBe('synthesized');
    expect(a.accuracy.data.samples).toBe(12);
    expect(a.accuracy.compressed).toBe(1);
    expect(a.output.gzipBytes).toBeUndefined();
  });

  it('compress --eval --min-size-reduction: the output is written and the gate exits 3', () => {
    const out = join(dir, 'gated.onnx');
    const r = cli(['compress', DIGITS, '-o', out, '--eval', ...DIGITS_DATA, '--min-size-reduction', '4', '--runs', '2']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/min-size-reduction failed: size reduction 1.000× is below the required 4×/);
    expect(existsSync(out)).toBe(true);
    expect(r.stdout).toMatch(/top-1 0\.\d+ → 0\.\d+ \(drop 0\.0000\)/);
  });

  it('writes Markdown and a self-contained HTML page', () => {
    const md = join(dir, 'r.md'),
      html = join(dir, 'r.html');
    const r = cli(['eval', damagedDigits(0.5), '--reference', DIGITS, ...DIGITS_DATA, '--report', md, '--report', html, '--runs', '0']);
    expect(r.code).toBe(0);
    expect(readFileSync(md, 'utf8')).toMatch(/\| logits \| [\d.e-]+ \|/);
    const page = readFileSync(html, 'utf8');
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<svg');
    expect(page).toContain('fc1.weight');
    expect(page).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('refuses bad options with exit code 2', () => {
    expect(cli(['eval', DIGITS, '--reference', DIGITS, '--metric', 'bogus']).code).toBe(2);
    expect(cli(['eval', DIGITS, '--reference', DIGITS, '--threads', '0']).code).toBe(2);
    expect(cli(['eval', DIGITS, '--reference', DIGITS, '--report', join(dir, 'x.txt')]).code).toBe(2);
    expect(cli(['compress', DIGITS, '-o', join(dir, 'y.onnx'), '--max-accuracy-drop', '0.1']).code).toBe(2);
    const labels = join(dir, 'short.txt');
    writeFileSync(labels, '1\n2\n');
    expect(
      cli(['eval', DIGITS, '--reference', DIGITS, '--data', fixture('digits', 'test_data_set_0'), '--labels', labels, '--runs', '0']).code,
    ).toBe(2);
  });
});

describe('eval of a language model', () => {
  const CHARLM = fixture('charlm', 'model.onnx');
  const DATA = ['--data', fixture('charlm', 'test_data_set_0')];

  it('measures the perplexity the fixture recorded, with labels found beside the data, and zero increase against itself', () => {
    const r = cli(['eval', CHARLM, '--reference', CHARLM, ...DATA, '--json', '--runs', '2']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const meta = JSON.parse(readFileSync(fixture('charlm', 'meta.json'), 'utf8'));
    expect(report.accuracy.metric).toBe('perplexity');
    expect(report.accuracy.perplexity.tokens).toBe(meta.tokens);
    expect(report.accuracy.reference).toBeCloseTo(meta.perplexity, 3);
    expect(report.accuracy.drop).toBe(0);
    expect(report.accuracy.fidelity.logits.cosine).toBe(1);
  });

  it('the terminal report signs a perplexity change either way (int8 lowers this one)', () => {
    const out = join(dir, 'charlm-int8.onnx');
    const r = cli(['compress', CHARLM, '-o', out, '--force', '--quantize', 'int8', '--eval', ...DATA, '--runs', '0']);
    expect(r.code).toBe(0);
    const json = cli(['eval', out, '--reference', CHARLM, ...DATA, '--json', '--runs', '0']);
    const drop = JSON.parse(json.stdout).accuracy.drop as number;
    expect(r.stdout).toContain(`(${drop < 0 ? '−' : '+'}${(100 * Math.abs(drop)).toFixed(2)}%)`);
    expect(r.stdout).not.toContain('+-');
  });

  it('a damaged copy: perplexity rises, the relative-increase gate exits 3', () => {
    const model = readModel(CHARLM);
    const random = seededRandom(3);
    for (const t of model.graph.initializer) {
      if (t.dims.length !== 2 || !t.raw_data) continue;
      const values = Float32Array.from(floatValues(t));
      for (let i = 0; i < values.length; i++) values[i]! *= 1 + 0.3 * (random() * 2 - 1);
      t.raw_data = new Uint8Array(values.buffer);
    }
    const damaged = join(dir, 'charlm-damaged.onnx');
    writeFileSync(damaged, encode('onnx.ModelProto', model.proto));
    const out = join(dir, 'charlm.json');
    const r = cli(['eval', damaged, '--reference', CHARLM, ...DATA, '--max-accuracy-drop', '0.01', '--report', out, '--runs', '0']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/relative perplexity increase [\d.]+ exceeds the allowed 0.01/);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.accuracy.compressed).toBeGreaterThan(report.accuracy.reference);
    expect(report.accuracy.drop).toBeCloseTo(report.accuracy.compressed / report.accuracy.reference - 1, 12);
  });
});
