// Evaluation without --data says what it assumed (issue 21 item 3): each symbolic dimension and its
// value, inputs shaped with --shape, unnamed dimensions, and the options that change them; --dim and
// --shape are checked against the model. A model that fails in ONNX Runtime on the synthesized
// inputs says what was fed and what to give instead (item 4).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ValueInfoProto } from '../../src/ir/onnx.js';
import { cli, fixture, scratch, type CliResult } from '../helpers.js';
import { graph, int64s, model, node, save, valueInfo } from '../robustness/models.js';

const dir = scratch();

/** One line on stderr with this exit code, never an internal error. */
function refused(r: CliResult, code: number, message: RegExp): void {
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(message);
}

/** A float input whose dimensions are numbers (fixed), names (symbolic) or null (neither: unnamed). */
function input(name: string, dims: (number | string | null)[]): ValueInfoProto {
  const info = valueInfo(
    name,
    1,
    dims.map((d) => d ?? 0),
  );
  info.type!.tensor_type!.shape!.dim = dims.map((d) => (d === null ? {} : typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return info;
}

/**
 * Like Silero VAD's export: 'x' is [1, ?] (the second dimension unnamed) and is reshaped to
 * [1, 4, -1], which needs a length that is a multiple of 4 (the synthesized 1 is not); 'h' is
 * [batch, 4] with a symbolic batch.
 */
const VAD = save(
  join(dir, 'vad.onnx'),
  model(
    graph(
      [node('Reshape', ['x', 'shape'], ['y']), node('Relu', ['h'], ['z'])],
      [input('x', [1, null]), input('h', ['batch', 4])],
      [input('y', [1, 4, null]), input('z', ['batch', 4])],
      { initializer: [int64s('shape', [1n, 4n, -1n])] },
    ),
  ),
);

/** 'x' [1, ?] and 'h' [batch, 4], each through a Relu: runs on any shape. */
const OPEN = save(
  join(dir, 'open.onnx'),
  model(
    graph(
      [node('Relu', ['x'], ['y']), node('Relu', ['h'], ['z'])],
      [input('x', [1, null]), input('h', ['batch', 4])],
      [input('y', [1, null]), input('z', ['batch', 4])],
    ),
  ),
);

const json = (r: CliResult) => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};

describe('evaluation without --data says what it assumed', () => {
  it('names each symbolic dimension and its value, and each unnamed one, with the option that sets it', () => {
    const report = json(cli(['eval', OPEN, '--reference', OPEN, '--runs', '0', '--json']));
    expect(report.accuracy.data.description).toBe(
      "synthesized: 4 batches (4 samples), seed 0; dims batch=1 (set with --dim NAME=N); input 'x' [1, ?] synthesized as [1, 1], unnamed dimensions set to 1 (set with --shape x=1,N)",
    );
  });

  it("--shape fixes an input's whole shape, --dim a named dimension; both are said, in JSON and in the terminal", () => {
    const args = [
      'eval',
      OPEN,
      '--reference',
      OPEN,
      '--runs',
      '0',
      '--shape',
      'x=1,512',
      '--dim',
      'batch=3',
      '--seed',
      '5',
      '--batches',
      '2',
    ];
    const report = json(cli([...args, '--json']));
    const expected = "synthesized: 2 batches (2 samples), seed 5; dims batch=3 (set with --dim NAME=N); input 'x' [1, 512] from --shape";
    expect(report.accuracy.data.description).toBe(expected);
    // The shapes were used: 2 batches of x [1, 512] and h [3, 4].
    expect(report.accuracy.fidelity.y.count).toBe(2 * 512);
    expect(report.accuracy.fidelity.z.count).toBe(2 * 3 * 4);
    const text = cli(args);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(expected);
  });

  it('a model whose inputs are all fixed says so', () => {
    const fixed = save(join(dir, 'fixed.onnx'), model(graph([node('Relu', ['x'], ['y'])], [input('x', [2, 3])], [input('y', [2, 3])])));
    expect(json(cli(['eval', fixed, '--reference', fixed, '--runs', '0', '--json'])).accuracy.data.description).toBe(
      'synthesized: 4 batches (8 samples), seed 0; every input shape fixed by the model',
    );
  });

  it('--shape in a recipe (eval.shape) is used and written back', () => {
    const recipe = join(dir, 'shape.recipe.yaml');
    writeFileSync(recipe, 'passes: []\neval:\n  runs: 0\n  shape: {x: [1, 64]}\n');
    const out = join(dir, 'recipe-out.onnx');
    const report = json(cli(['compress', OPEN, '-o', out, '--recipe', recipe, '--json']));
    expect(report.accuracy.data.description).toContain("input 'x' [1, 64] from --shape");
    expect(report.recipe.eval.shape).toEqual({ x: [1, 64] });
    writeFileSync(recipe, 'passes: []\neval:\n  shape: {x: [1, 0]}\n');
    refused(cli(['compress', OPEN, '-o', out, '--force', '--recipe', recipe]), 2, /eval\.shape: must map input names to shapes/);
  });
});

describe('--shape and --dim are checked against the model (exit 2, one line)', () => {
  const evalOpen = (...extra: string[]) => cli(['eval', OPEN, '--reference', OPEN, '--runs', '0', ...extra]);

  it('an input the model does not have: names it and the inputs with their declared shapes', () => {
    refused(
      evalOpen('--shape', 'y=1,512'),
      2,
      /^onnxpress: --shape y=1,512: .*open\.onnx has no input 'y' \(its inputs: 'x' float32 \[1, \?\], 'h' float32 \[batch, 4\]\)$/,
    );
  });

  it('another rank, or against a fixed dimension: names the input and its declared shape', () => {
    refused(
      evalOpen('--shape', 'x=512'),
      2,
      /^onnxpress: --shape x=512: input 'x' of .*open\.onnx is float32 \[1, \?\], of rank 2; the shape given has 1 dimension$/,
    );
    refused(
      evalOpen('--shape', 'x=2,512'),
      2,
      /^onnxpress: --shape x=2,512: input 'x' of .*open\.onnx is float32 \[1, \?\]: dimension 0 is fixed at 1$/,
    );
  });

  it('not positive whole numbers, or the same input twice', () => {
    for (const spec of ['x=1,0', 'x=1,-4', 'x=1,2.5', 'x=', '=1,2', 'x']) {
      refused(evalOpen('--shape', spec), 2, /--shape takes INPUT=D0,D1,\.\.\. with positive whole dimensions/);
    }
    refused(evalOpen('--shape', 'x=1,2', '--shape', 'x=1,3'), 2, /--shape given twice for input 'x'/);
  });

  it('with --data: the data has its own shapes', () => {
    refused(
      evalOpen('--shape', 'x=1,512', '--data', fixture('mlp', 'test_data_set_0')),
      2,
      /--shape sets the shapes of synthesized inputs: with --data, the data gives its own shapes$/,
    );
  });

  it('a --dim name no input has: names the dimensions the model has; compress writes nothing', () => {
    refused(
      evalOpen('--dim', 'seq=8'),
      2,
      /^onnxpress: --dim seq: no input of .*open\.onnx has a dimension named 'seq' \(its named dimensions: batch\)$/,
    );
    const out = join(dir, 'never.onnx');
    refused(cli(['compress', OPEN, '-o', out, '--eval', '--dim', 'seq=8']), 2, /--dim seq: no input/);
    refused(cli(['compress', OPEN, '-o', out, '--eval', '--shape', 'q=1']), 2, /--shape q=1: .* has no input 'q'/);
    expect(existsSync(out)).toBe(false);
    const fixed = save(join(dir, 'fixed-dim.onnx'), model(graph([node('Relu', ['x'], ['y'])], [input('x', [2, 3])], [input('y', [2, 3])])));
    refused(
      cli(['eval', fixed, '--reference', fixed, '--dim', 'N=2']),
      2,
      /no input of .* has a dimension named 'N' \(it has none; give an input's whole shape with --shape INPUT=D0,D1,\.\.\.\)$/,
    );
  });
});

describe('a model that fails in ONNX Runtime on the synthesized inputs', () => {
  it('one line: the model, the inputs fed with shapes and dtypes, and --shape, --dim and --data to try', () => {
    const r = cli(['eval', VAD, '--reference', VAD, '--runs', '0']);
    refused(
      r,
      1,
      /^onnxpress: .*vad\.onnx: ONNX Runtime failed running it on x: float32 \[1, 1\], h: float32 \[1, 4\]: .*cannot be reshaped/,
    );
    expect(r.stderr.trim()).toMatch(
      /\(the inputs were synthesized: give the shapes the model needs with --shape x=1,N or --shape h=N,4, the symbolic dimensions with --dim \(batch=N\), or real inputs with --data\)$/,
    );
    // And the shape it needs makes it run.
    expect(cli(['eval', VAD, '--reference', VAD, '--runs', '0', '--shape', 'x=1,512']).code).toBe(0);
  });

  it('compress --eval: the message says that the output was written, and it is there', () => {
    const out = join(dir, 'vad-out.onnx');
    const r = cli(['compress', VAD, '-o', out, '--eval', '--runs', '0']);
    refused(
      r,
      1,
      new RegExp(
        `^onnxpress: wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, then the evaluation failed: .*vad\\.onnx: ONNX Runtime failed running it on x: float32 \\[1, 1\\]`,
      ),
    );
    expect(existsSync(out)).toBe(true);
  });
});
