import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('recipes', () => {
  it('the same pipeline from flags and from a recipe gives byte-identical outputs', () => {
    const recipe = file('r.yaml', 'passes:\n  - prune: {method: magnitude, sparsity: 0.3}\n  - quantize: {method: int4, block: 32}\n');
    expect(
      cli(['compress', DIGITS, '-o', join(dir, 'flags.onnx'), '--prune', 'magnitude:sparsity=0.3', '--quantize', 'int4:block=32']).code,
    ).toBe(0);
    expect(cli(['compress', DIGITS, '-o', join(dir, 'recipe.onnx'), '--recipe', recipe]).code).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, 'flags.onnx')), readFileSync(join(dir, 'recipe.onnx')))).toBe(0);
  });

  it("JSON recipes work too, and a report's recipe reproduces its output byte for byte", () => {
    const recipe = file(
      'r.json',
      JSON.stringify({
        passes: [{ quantize: { method: 'int8', granularity: 'tensor' } }],
        eval: { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt'), runs: 0 },
        gates: { 'max-accuracy-drop': 0.05 },
      }),
    );
    const report = join(dir, 'report.json');
    const first = cli(['compress', DIGITS, '-o', join(dir, 'a.onnx'), '--recipe', recipe, '--report', report]);
    expect(first.code).toBe(0);
    const recorded = JSON.parse(readFileSync(report, 'utf8'));
    expect(recorded.recipe.passes[0].quantize).toMatchObject({
      method: 'int8',
      granularity: 'tensor',
      symmetric: true,
      mode: 'auto',
      'min-size': 256,
    });
    expect(recorded.recipe.gates).toEqual({ 'max-accuracy-drop': 0.05 });
    expect(recorded.accuracy.metric).toBe('top1');
    expect(cli(['compress', DIGITS, '-o', join(dir, 'b.onnx'), '--recipe', report]).code).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, 'a.onnx')), readFileSync(join(dir, 'b.onnx')))).toBe(0);
  });

  const bad: [string, string, RegExp][] = [
    [
      'an unknown pass',
      'passes:\n  - quantize: {method: int8}\n  - squash: {method: x}\n',
      /:3: passes\[1\]: unknown pass family 'squash'/,
    ],
    ['an unknown method', 'passes:\n  - prune: {method: random}\n', /:2: passes\[0\]\.prune: unknown prune method 'random'/],
    [
      'a bad option type',
      'passes:\n  - quantize:\n      method: int8\n      symmetric: maybe\n',
      /:4: passes\[0\]\.quantize: symmetric must be true or false/,
    ],
    [
      'an out-of-range value',
      'passes:\n  - prune: {method: magnitude, sparsity: 1.5}\n',
      /:2: passes\[0\]\.prune: sparsity must be at most 1, got 1\.5/,
    ],
    ['an unknown option', 'passes:\n  - quantize: {method: int8, bogus: 1}\n', /passes\[0\]\.quantize: unknown option 'bogus'/],
    ['an unknown top-level key', 'pases: []\n', /:1: pases: unknown key/],
    ['a bad gate', 'gates: {min-size-reduction: big}\n', /gates\.min-size-reduction: must be a number/],
    ['broken YAML', 'passes: [\n', /r-broken\.yaml:\d+:/],
  ];
  it.each(bad)('%s fails before any work, naming the line and the key (exit 2)', (_what, text, message) => {
    const recipe = file(`r-${_what === 'broken YAML' ? 'broken' : _what.replace(/\W+/g, '_')}.yaml`, text);
    // The model does not even exist: the recipe is refused before anything is read.
    const r = cli(['compress', join(dir, 'no-such-model.onnx'), '-o', join(dir, 'never.onnx'), '--recipe', recipe]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(dir, 'never.onnx'))).toBe(false);
  });

  it('passes on the command line and in the recipe together are refused', () => {
    const recipe = file('both.yaml', 'passes:\n  - quantize: {method: int8}\n');
    expect(cli(['compress', DIGITS, '-o', join(dir, 'both.onnx'), '--recipe', recipe, '--prune', 'nm']).code).toBe(2);
  });
});

describe('--dry-run and --list-passes', () => {
  it('a dry run writes nothing and reports exactly the size the real run writes', () => {
    const out = join(dir, 'dry.onnx');
    const dry = JSON.parse(cli(['compress', DIGITS, '-o', out, '--quantize', 'int8', '--prune', 'nm', '--dry-run', '--json']).stdout);
    expect(existsSync(out)).toBe(false);
    expect(dry.dryRun).toBe(true);
    const real = JSON.parse(cli(['compress', DIGITS, '-o', out, '--quantize', 'int8', '--prune', 'nm', '--json']).stdout);
    expect(dry.output.bytes).toBe(real.output.bytes);
    expect(dry.output.bytes).toBe(readFileSync(out).length);
    expect(dry.passes.map((p: { method: string }) => p.method)).toEqual(['int8', 'nm']);
  });

  it('--list-passes names every pass with its options and defaults', () => {
    const r = cli(['compress', '--list-passes']);
    expect(r.code).toBe(0);
    for (const spec of ['--quantize int8', '--quantize int4', '--prune magnitude', '--prune nm', '--prune structured'])
      expect(r.stdout).toContain(spec);
    expect(r.stdout).toMatch(/sparsity=number ≥ 0 ≤ 1 \(default 0\.5\)/);
  });
});

describe('seeds', () => {
  it('--seed reaches the passes, is recorded in the recipe, and the report reproduces the output', () => {
    const a = join(dir, 'seed5.onnx'),
      b = join(dir, 'seed5-again.onnx'),
      c = join(dir, 'seed6.onnx'),
      report = join(dir, 'seed5.json');
    expect(cli(['compress', DIGITS, '-o', a, '--share', 'cluster:k=16', '--seed', '5', '--report', report]).code).toBe(0);
    expect(JSON.parse(readFileSync(report, 'utf8')).recipe.seed).toBe(5);
    expect(cli(['compress', DIGITS, '-o', b, '--recipe', report]).code).toBe(0);
    expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
    expect(cli(['compress', DIGITS, '-o', c, '--share', 'cluster:k=16', '--seed', '6']).code).toBe(0);
    expect(Buffer.compare(readFileSync(a), readFileSync(c))).not.toBe(0);
  });
});
