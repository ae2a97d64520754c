// onnxpress convert on a model of 64 MiB or more: read lazily, unchanged tensor bytes copied file to
// file by helper threads (as compress's round trip), landing elsewhere than in the input since the
// conversion adds nodes before them. The file must be the one the library writes on one thread.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertOpset } from '../../src/convert/convert.js';
import { readModel } from '../../src/io/read.js';
import { writeModel } from '../../src/io/write.js';
import { cli, scratch } from '../helpers.js';
import { graph, int, ints, model, node, save, tensor, values, vi } from './helpers.js';

const dir = scratch();

describe('onnxpress convert on a large model', () => {
  it('writes the same bytes as a one-thread write of the library conversion', () => {
    const rows = 4100,
      cols = 4096; // 67,174,400 bytes of weights: above the 64 MiB of the lazy read and the helper threads
    const big = save(
      join(dir, 'big13.onnx'),
      model(
        graph(
          [node('MatMul', ['x', 'w'], ['h']), node('ReduceMean', ['h'], ['y'], [ints('axes', [1]), int('keepdims', 1)])],
          [vi('x', [1, rows])],
          [vi('y', [1, 1])],
          [tensor('w', [rows, cols], Array.from(values(rows * cols, 3)))],
        ),
        13,
        { ir_version: 7 },
      ),
    );
    const out = join(dir, 'big21.onnx');
    const r = cli(['convert', big, '-o', out, '--opset', '21']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ReduceMean 13→18: axes attribute to input ×1/);
    const m = readModel(big);
    convertOpset(m, 21);
    const one = join(dir, 'big21-one-thread.onnx');
    writeModel(m, one, { threads: 1 });
    const a = readFileSync(out),
      b = readFileSync(one);
    expect(a.length).toBe(b.length);
    expect(a.equals(b)).toBe(true);
  }, 60_000);
});
