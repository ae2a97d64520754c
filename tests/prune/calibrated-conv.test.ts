// Wanda and SparseGPT on Conv weights: a 2-D Conv is its weight [O, C·kh·kw] times its input's
// patches (ir/conv.ts), which calibration forms in ONNX Runtime with a one-hot Conv. Checked against
// patches formed here by plain loops, then on the digits CNN (calibrated on test_data_set_1,
// evaluated on test_data_set_0) against magnitude pruning at the same sparsity.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { convPatches } from '../../src/ir/conv.js';
import { DataType } from '../../src/ir/onnx.js';
import { tensorValues } from '../../src/ir/tensor.js';
import { calibrate } from '../../src/runtime/calibrate.js';
import { graph, int, ints, model, node, save, values, vi } from '../convert/helpers.js';
import { fixture, npy, scratch } from '../helpers.js';
import { writeFileSync } from 'node:fs';
import { compressAndEvaluate } from '../quantize/helpers.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { fromFloat16, toFloat16 } from '../../src/ir/half.js';

const dir = scratch();
const path = (name: string) => join(dir, name);

/** XᵀX of a Conv input's patches (rows: every sample and output position), by plain loops. */
function patchGram(x: Float32Array, [n, c, h, w]: number[], kh: number, kw: number, s: number[], p: number[], d: number[]) {
  const ho = Math.floor((h + p[0]! + p[2]! - d[0]! * (kh - 1) - 1) / s[0]!) + 1;
  const wo = Math.floor((w + p[1]! + p[3]! - d[1]! * (kw - 1) - 1) / s[1]!) + 1;
  const k = c * kh * kw;
  const gram = new Float64Array(k * k);
  const row = new Float64Array(k);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        let f = 0;
        for (let ch = 0; ch < c; ch++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++, f++) {
              const y = oy * s[0]! - p[0]! + i * d[0]!,
                xx = ox * s[1]! - p[1]! + j * d[1]!;
              row[f] = y >= 0 && y < h && xx >= 0 && xx < w ? x[((b * c + ch) * h + y) * w + xx]! : 0;
            }
        for (let a = 0; a < k; a++) for (let e = 0; e < k; e++) gram[a * k + e]! += row[a]! * row[e]!;
      }
  return { gram, rows: n * ho * wo };
}

describe('calibration of a Conv input as patches', () => {
  it.each([
    ['3×3, stride 2, pads 1', [3, 3], [2, 2], [1, 1, 1, 1], [1, 1]],
    ['2×3, stride 1, uneven pads, dilation 2', [2, 3], [1, 1], [0, 2, 1, 0], [2, 2]],
  ])('%s: XᵀX and Σx² per entry as loops over the patches give them', async (_name, [kh, kw], strides, pads, dilations) => {
    const dims = [3, 2, 7, 6];
    const weight = makeTensor('W', DataType.FLOAT, [4, 2, kh!, kw!], new Uint8Array(values(4 * 2 * kh! * kw!, 7).buffer));
    const conv = node('Conv', ['x', 'W'], ['y'], [ints('strides', strides), ints('pads', pads), ints('dilations', dilations)]);
    const file = save(path(`conv-${kh}${kw}.onnx`), model(graph([conv], [vi('x', dims)], [vi('y')], [weight]), 17));
    const x = values(
      dims.reduce((a, b) => a * b, 1),
      11,
    );
    const data = path(`conv-${kh}${kw}.npy`);
    writeFileSync(data, npy(x, dims));
    const m = readModel(file);
    const patches = convPatches(m.graph.node[0]!, [4, 2, kh!, kw!])!;
    const k = 2 * kh! * kw!;
    const c = await calibrate(m, { grams: [{ name: 'x', k, patches, id: 'g' }], norms: [{ name: 'x', patches, id: 'n' }] }, data);
    const expected = patchGram(x, dims, kh!, kw!, strides, pads, dilations);
    const g = c.gram.get('g')!;
    expect(g.rows).toBe(expected.rows);
    for (let i = 0; i < k * k; i++) expect(g.matrix[i]).toBeCloseTo(expected.gram[i]!, 9);
    const norms = c.norms.get('n')!;
    expect(norms.rows).toBe(expected.rows);
    for (let i = 0; i < k; i++) expect(norms.sumSq[i]).toBeCloseTo(expected.gram[i * k + i]!, 9);
  });
});

describe('calibration of a float16 value', () => {
  // The layer inputs of a float16 model are float16: their XᵀX is that of the float16 values (made
  // float64 for the product and the sums: exact), as loops over them give it.
  it('XᵀX and Σx of a float16 MatMul input as loops over its float16 values give them', async () => {
    const [rows, k] = [10, 6];
    const weight = makeTensor('W', DataType.FLOAT16, [k, 3], new Uint8Array(toFloat16(values(k * 3, 5)).buffer));
    const nodes = [node('Cast', ['x'], ['h'], [int('to', DataType.FLOAT16)]), node('MatMul', ['h', 'W'], ['y'])];
    const file = save(path('half.onnx'), model(graph(nodes, [vi('x', [rows, k])], [vi('y', undefined, DataType.FLOAT16)], [weight]), 17));
    const x = values(rows * k, 13);
    const data = path('half.npy');
    writeFileSync(data, npy(x, [rows, k]));
    const c = await calibrate(readModel(file), { grams: [{ name: 'h', k, sums: true }] }, data);
    const h = fromFloat16(toFloat16(x));
    const g = c.gram.get('h')!;
    expect(g.rows).toBe(rows);
    for (let i = 0; i < k; i++) {
      expect(g.sums![i]).toBeCloseTo(
        Array.from({ length: rows }, (_, r) => h[r * k + i]!).reduce((a, b) => a + b, 0),
        9,
      );
      for (let j = 0; j < k; j++) {
        let expected = 0;
        for (let r = 0; r < rows; r++) expected += h[r * k + i]! * h[r * k + j]!;
        expect(g.matrix[i * k + j]).toBeCloseTo(expected, 9);
      }
    }
  });
});

describe('calibrated pruning of the digits CNN, Convs included', () => {
  const data = { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') };
  const calibration = fixture('digits', 'test_data_set_1');
  const cosineOf = (e: { accuracy: { fidelity: Record<string, { cosine: number }> } }) =>
    Math.min(...Object.values(e.accuracy.fidelity).map((f) => f.cosine));

  it('50 %: conv2 half zeros; SparseGPT and Wanda closer to the original than magnitude pruning, SparseGPT closer with its refit and within one image of top-1', async () => {
    const run = (name: string, spec: string) => compressAndEvaluate(fixture('digits', 'model.onnx'), path(name), [['prune', spec]], data);
    const magnitude = await run('magnitude.onnx', 'magnitude:sparsity=0.5');
    const wanda = await run('wanda.onnx', `wanda:sparsity=0.5,calibration=${calibration}`);
    const sparsegpt = await run('sparsegpt.onnx', `sparsegpt:sparsity=0.5,calibration=${calibration}`);
    for (const r of [wanda, sparsegpt]) {
      const pass = r.result.passes[0]!;
      expect(pass.tensors.map((t) => t.name).sort()).toEqual(['conv2.weight', 'fc1.weight', 'fc2.weight']);
      const conv2 = tensorValues(r.output.graph.initializer.find((t) => t.name === 'conv2.weight')!) as Float32Array;
      expect(conv2.filter((v) => v === 0).length).toBe(conv2.length / 2);
    }
    // Measured: logit cosine magnitude 0.98927, Wanda 0.99667, SparseGPT 0.99979 (0.99957 without the
    // refit); top-1 drop 0.28 / 0.28 / 0.28 pt (0 without the refit): one image of 360.
    const sweepOnly = await run('sparsegpt-sweep.onnx', `sparsegpt:sparsity=0.5,refit=0,calibration=${calibration}`);
    expect(cosineOf(wanda.evaluation)).toBeGreaterThan(cosineOf(magnitude.evaluation));
    expect(cosineOf(sparsegpt.evaluation)).toBeGreaterThan(cosineOf(wanda.evaluation));
    expect(cosineOf(sparsegpt.evaluation)).toBeGreaterThan(cosineOf(sweepOnly.evaluation));
    expect(sparsegpt.evaluation.accuracy.drop).toBeLessThanOrEqual(1 / 360 + 1e-9);
  });

  it('a grouped Conv is left alone, with the reason', async () => {
    const weight = makeTensor('W', DataType.FLOAT, [4, 1, 3, 3], new Uint8Array(values(36, 3).buffer));
    const conv = node('Conv', ['x', 'W'], ['y'], [int('group', 2), ints('pads', [1, 1, 1, 1])]);
    const file = save(path('grouped.onnx'), model(graph([conv], [vi('x', [1, 2, 5, 5])], [vi('y')], [weight]), 17));
    const data = path('grouped.npy');
    writeFileSync(data, npy(values(50, 5), [1, 2, 5, 5]));
    const { result } = await compressAndEvaluate(file, path('grouped-out.onnx'), [['prune', `sparsegpt:min-size=0,calibration=${data}`]], {
      data,
    });
    expect(result.passes[0]!.skipped).toEqual([
      { name: 'W', reason: 'not a 2-D Conv with one group and explicit pads (its patches are not formed as rows here)' },
    ]);
  });
});
