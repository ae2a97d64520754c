import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, cli, fixture, leftoverTemps, scratch } from '../helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');

describe('the bundled command line', () => {
  it('starts from the code cache the build wrote, which V8 accepts', () => {
    const probe =
      "import('./bin/load-cli.mjs').then(({ loadCli }) => { const { script } = loadCli(); console.log(JSON.stringify({ rejected: script.cachedDataRejected })); })";
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ rejected: false });
  });
});

describe('onnxpress inspect', () => {
  it('prints a stable JSON summary', () => {
    const r = cli(['inspect', DIGITS, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.irVersion).toBe(10);
    expect(report.opsets['ai.onnx']).toBe(17);
    expect(report.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: [expect.any(String), 1, 8, 8] }]);
    expect(report.outputs[0].name).toBe('logits');
    expect(report.ops.Conv).toBe(2);
    expect(report.parameters).toBe(report.tensors.reduce((n: number, t: { shape: number[] }) => n + t.shape.reduce((a, b) => a * b, 1), 0));
    expect(report.weightBytes).toBe(report.parameters * 4);
    expect(report.tensors.every((t: { where: string }) => t.where === 'initializer')).toBe(true);
    expect(report.duplicates).toEqual({ tensors: 0, groups: 0, bytes: 0 });
  });

  it('counts weights inside subgraphs and Constant nodes, and external tensors', () => {
    const sub = JSON.parse(cli(['inspect', fixture('conformance', 'if_subgraph', 'model.onnx'), '--json']).stdout);
    expect(sub.tensors.some((t: { where: string }) => t.where === 'subgraph')).toBe(true);
    expect(sub.ops.MatMul).toBeGreaterThanOrEqual(2);
    const constants = JSON.parse(cli(['inspect', fixture('conformance', 'constants', 'model.onnx'), '--json']).stdout);
    expect(constants.tensors.some((t: { where: string }) => t.where === 'constant')).toBe(true);
    expect(constants.parameters).toBeGreaterThan(0);
    const ext = JSON.parse(cli(['inspect', fixture('conformance', 'external', 'model.onnx'), '--json']).stdout);
    expect(ext.external.tensors).toBe(3);
    expect(ext.tensors.filter((t: { where: string }) => t.where === 'external')).toHaveLength(3);
  });

  it('finds the repeated blocks as exact duplicates', () => {
    const r = JSON.parse(cli(['inspect', fixture('repeated', 'model.onnx'), '--json']).stdout);
    // four blocks share W1, b1, W2, b2: three copies of each of the four tensors
    expect(r.duplicates.tensors).toBe(12);
    expect(r.duplicates.groups).toBe(4);
  });

  it('prints a readable summary', () => {
    const r = cli(['inspect', DIGITS]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/IR 10, opsets ai.onnx 17/);
    expect(r.stdout).toMatch(/largest tensors/);
  });
});

describe('onnxpress compress with no pass', () => {
  it('writes a byte-identical copy and says so', () => {
    const out = join(dir, 'copy.onnx');
    const r = cli(['compress', DIGITS, '-o', out, '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.output.identical).toBe(true);
    expect(result.passes).toEqual([]);
    expect(result.sizeRatio).toBe(1);
    expect(result.output.bytes).toBe(readFileSync(DIGITS).length);
    expect(Buffer.compare(readFileSync(out), readFileSync(DIGITS))).toBe(0);
  });

  it('refuses to replace an existing file without --force', () => {
    const out = join(dir, 'exists.onnx');
    writeFileSync(out, 'keep me');
    const r = cli(['compress', DIGITS, '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/exists; pass --force/);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    expect(cli(['compress', DIGITS, '-o', out, '--force']).code).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(DIGITS))).toBe(0);
  });

  it('never writes over its input, even with --force', () => {
    const input = join(dir, 'self.onnx');
    copyFileSync(DIGITS, input);
    const r = cli(['compress', input, '-o', input, '--force']);
    expect(r.code).toBe(2);
    expect(Buffer.compare(readFileSync(input), readFileSync(DIGITS))).toBe(0);
  });

  it('writes external data on request', () => {
    const out = join(dir, 'ext.onnx');
    const r = cli(['compress', DIGITS, '-o', out, '--external-data', '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.output.files.map((f: { path: string }) => f.path)).toEqual([out, out + '.data']);
    expect(existsSync(out + '.data')).toBe(true);
  });
});

describe('errors', () => {
  const bad: [string, () => string[]][] = [
    ['a missing file', () => ['inspect', join(dir, 'missing.onnx')]],
    ['a directory', () => ['inspect', dir]],
    [
      'an empty file',
      () => {
        const p = join(dir, 'empty.onnx');
        writeFileSync(p, '');
        return ['inspect', p];
      },
    ],
    [
      'random bytes',
      () => {
        const p = join(dir, 'rand.onnx');
        writeFileSync(p, Buffer.from(Array.from({ length: 999 }, (_, i) => (i * 7919) & 0xff)));
        return ['inspect', p];
      },
    ],
    [
      'a truncated model',
      () => {
        const p = join(dir, 'trunc.onnx');
        writeFileSync(p, readFileSync(DIGITS).subarray(0, 777));
        return ['compress', p, '-o', join(dir, 'trunc-out.onnx')];
      },
    ],
  ];
  it.each(bad)('%s: one line naming the file, exit code 1, no stack trace, no output file', (_what, args) => {
    const argv = args();
    const r = cli(argv);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^onnxpress: /);
    expect(lines[0]).toContain(argv[1]!);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(dir, 'trunc-out.onnx'))).toBe(false);
    expect(leftoverTemps(dir)).toEqual([]);
  });

  it('usage errors exit with 2', () => {
    expect(cli(['compress', DIGITS]).code).toBe(2);
    expect(cli(['inspect']).code).toBe(2);
    expect(cli(['frobnicate']).code).toBe(2);
    expect(cli(['compress', DIGITS, '-o', join(dir, 'x.onnx'), '--external-threshold', '-5']).code).toBe(2);
  });

  it.each([[[]], [['inspect']], [['compress']], [['conformance']]])('--help works for %j', (args) => {
    const r = cli([...args, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: onnxpress/);
  });
});
