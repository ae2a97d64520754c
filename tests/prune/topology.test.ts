// Structured pruning across every topology, on a small generated CNN that has them all: a residual
// stream written by two layers, a Concat, a grouped Conv reading the Concat, ShuffleNet's channel
// shuffle, a depthwise Conv, and Flatten into a Gemm. The oracle: the channels the pass must remove
// are made exactly zero in the fixture (zero weights, no biases, ReLU(0) = 0), so the pruned model
// must compute the original's outputs exactly — any channel mapped to the wrong place would change
// them. When ONNX's light model zoo is installed (the onnx Python wheel), all nine are pruned too.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { intAttribute, intsAttribute, makeNode } from '../../src/ir/build.js';
import { DataType, type NodeProto, type TensorProto } from '../../src/ir/onnx.js';
import { makeTensor, tensorValues } from '../../src/ir/tensor.js';
import { readModel } from '../../src/io/read.js';
import { scratch } from '../helpers.js';
import { graph, model, save, vi } from '../convert/helpers.js';
import { compressAndEvaluate } from '../quantize/helpers.js';

const dir = scratch();

const int64s = (name: string, values: number[]) =>
  makeTensor(name, DataType.INT64, [values.length], new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));

/** A seeded weight [dims] whose output channels (axis 0 entries) in `zeroRows` and columns (axis 1) in `zeroCols` are zero. */
function weight(name: string, dims: number[], seed: number, zeroRows: number[] = [], zeroCols: number[] = []): TensorProto {
  const size = dims.reduce((a, b) => a * b, 1);
  const inner = dims.slice(1).reduce((a, b) => a * b, 1);
  const per = dims.slice(2).reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: size }, (_, i) => {
    const row = Math.floor(i / inner);
    const col = Math.floor((i % inner) / per);
    if (zeroRows.includes(row) || zeroCols.includes(col)) return 0;
    return Math.sin(seed * 12.9898 + i * 78.233) * 0.5 + 0.1;
  });
  return makeTensor(name, DataType.FLOAT, dims, new Uint8Array(values.buffer));
}

/**
 * x [1,4,6,6] → conv1 (8) → relu → r1; conv2(r1) (8) + r1 → stream a1 (both layers write it: joint);
 * conv3(a1) (8) → r3, conv4(a1) (4) → r4; Concat(r3, r4) (12) → grouped conv g (group 2, 12 out) →
 * relu → shuffle (2 groups of 6) → depthwise (12) → conv f (5) → GlobalAveragePool → Flatten → Gemm (3) → y.
 * Zeroed, so that ratio 0.5 removes exactly them: stream channels 1, 3, 4, 6 (in conv1 and conv2);
 * conv3's channels 2 (group 0 of g) and 7 (group 1); g's in-group outputs 0, 2, 5 (in both groups); f's channels 1, 3.
 */
function topologyModel(): string {
  const initializer = [
    weight('W1', [8, 4, 3, 3], 1, [1, 3, 4, 6]),
    weight('W2', [8, 8, 1, 1], 2, [1, 3, 4, 6]),
    weight('W3', [8, 8, 1, 1], 3, [2, 7]),
    weight('W4', [4, 8, 1, 1], 4),
    weight('Wg', [12, 6, 1, 1], 5, [0, 2, 5, 6, 8, 11]),
    weight('Wd', [12, 1, 3, 3], 6),
    weight('Wf', [5, 12, 1, 1], 7, [1, 3]),
    weight('Wy', [5, 3], 8),
    int64s('shuffle_split', [1, 2, 6, 6, 6]),
    int64s('shuffle_merge', [1, 12, 6, 6]),
  ];
  const pads = intsAttribute('pads', [1, 1, 1, 1]);
  const node: NodeProto[] = [
    makeNode('Conv', ['x', 'W1'], ['c1'], 'conv1', [pads]),
    makeNode('Relu', ['c1'], ['r1'], 'relu1'),
    makeNode('Conv', ['r1', 'W2'], ['c2'], 'conv2'),
    makeNode('Add', ['r1', 'c2'], ['a1'], 'residual'),
    makeNode('Conv', ['a1', 'W3'], ['c3'], 'conv3'),
    makeNode('Relu', ['c3'], ['r3'], 'relu3'),
    makeNode('Conv', ['a1', 'W4'], ['c4'], 'conv4'),
    makeNode('Relu', ['c4'], ['r4'], 'relu4'),
    makeNode('Concat', ['r3', 'r4'], ['cat'], 'concat', [intAttribute('axis', 1)]),
    makeNode('Conv', ['cat', 'Wg'], ['g'], 'grouped', [intAttribute('group', 2)]),
    makeNode('Relu', ['g'], ['rg'], 'relu_g'),
    makeNode('Reshape', ['rg', 'shuffle_split'], ['s1'], 'split'),
    makeNode('Transpose', ['s1'], ['s2'], 'swap', [intsAttribute('perm', [0, 2, 1, 3, 4])]),
    makeNode('Reshape', ['s2', 'shuffle_merge'], ['sh'], 'merge'),
    makeNode('Conv', ['sh', 'Wd'], ['d'], 'depthwise', [intAttribute('group', 12), pads]),
    makeNode('Conv', ['d', 'Wf'], ['f'], 'convf'),
    makeNode('GlobalAveragePool', ['f'], ['p'], 'gap'),
    makeNode('Flatten', ['p'], ['fl'], 'flatten', [intAttribute('axis', 1)]),
    makeNode('Gemm', ['fl', 'Wy'], ['y'], 'fc'),
  ];
  const proto = model(graph(node, [vi('x', [1, 4, 6, 6])], [vi('y', [1, 3])], initializer), 13, {
    ir_version: 8,
    producer_name: 'onnxpress-test',
  });
  const path = save(join(dir, 'topology.onnx'), proto);
  return path;
}

describe('structured pruning across residual, Concat, grouped, depthwise and shuffled channels', () => {
  it('removes exactly the zero channels, jointly where they are tied, and computes the same outputs in ONNX Runtime', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(
      topologyModel(),
      join(dir, 'topology-pruned.onnx'),
      [['prune', 'structured:ratio=0.5']],
      { batches: 1 },
    );
    const dims = (name: string) => output.graph.initializer.find((t) => t.name === name)!.dims.map(Number);
    // The residual stream: both writers keep the same 4 channels; its readers lose the same 4 inputs.
    expect(dims('W1')).toEqual([4, 4, 3, 3]);
    expect(dims('W2')).toEqual([4, 4, 1, 1]);
    expect(dims('W3')).toEqual([6, 4, 1, 1]);
    expect(dims('W4')[1]).toBe(4);
    // The grouped Conv keeps 2 groups, each losing one input channel (conv3's, through the Concat) and 3 outputs.
    expect(dims('Wg')).toEqual([6, 5, 1, 1]);
    expect(output.graph.node.find((n) => n.name === 'grouped')!.attribute.find((a) => a.name === 'group')!.i).toBe(2);
    // The shuffle now splits 6 channels into 2 groups of 3; the depthwise Conv loses whole groups.
    const shape = (name: string) =>
      Array.from(tensorValues(output.graph.initializer.find((t) => t.name === name)!) as BigInt64Array, Number);
    expect(shape('shuffle_split')).toEqual([1, 2, 3, 6, 6]);
    expect(shape('shuffle_merge')).toEqual([1, 6, 6, 6]);
    expect(dims('Wd')).toEqual([6, 1, 3, 3]);
    expect(Number(output.graph.node.find((n) => n.name === 'depthwise')!.attribute.find((a) => a.name === 'group')!.i)).toBe(6);
    expect(dims('Wf')).toEqual([3, 6, 1, 1]);
    expect(dims('Wy')).toEqual([3, 3]);
    const joint = result.passes[0]!.tensors.find((t) => t.name === 'W1')!;
    expect(joint.form).toBe('4 of 8 channels removed (l1 norm, jointly with 1 other layer)');
    // conv4's channels all lie in the grouped Conv's second group: removing any would unbalance it.
    expect(result.passes[0]!.notes.join('\n')).toMatch(/could not lose as many of them in every group/);
    const fidelity = evaluation.accuracy.fidelity.y!;
    expect(fidelity.count).toBe(3);
    expect(fidelity.maxAbsError).toBeLessThan(1e-5);
  });
});

describe('calibrated structured pruning across the same topology', () => {
  it('scores the zero channels lowest and rebuilds the layers reading them without changing the outputs (lstsq and bias)', async () => {
    const model = topologyModel();
    // Four inputs (the model's batch is 1: one test_data_set each), so that every live channel varies.
    for (let n = 0; n < 4; n++) {
      const set = join(dir, 'calibration', `test_data_set_${n}`);
      mkdirSync(set, { recursive: true });
      const x = Float32Array.from({ length: 4 * 36 }, (_, i) => Math.cos(i * 0.61 + n * 1.3) + 0.2 * n);
      const t = makeTensor('x', DataType.FLOAT, [1, 4, 6, 6], new Uint8Array(x.buffer));
      writeFileSync(join(set, 'input_0.pb'), encode('onnx.TensorProto', t));
    }
    for (const reconstruct of ['lstsq', 'bias']) {
      const { result, evaluation, output } = await compressAndEvaluate(
        model,
        join(dir, `topology-${reconstruct}.onnx`),
        [['prune', `structured:ratio=0.5,calibration=${join(dir, 'calibration')},reconstruct=${reconstruct}`]],
        { batches: 1 },
      );
      const dims = (name: string) => output.graph.initializer.find((t) => t.name === name)!.dims.map(Number);
      expect(dims('W1')).toEqual([4, 4, 3, 3]);
      expect(dims('Wg')).toEqual([6, 5, 1, 1]);
      expect(dims('Wf')).toEqual([3, 6, 1, 1]);
      expect(result.passes[0]!.notes[0]).toMatch(/\(4 samples\): scores activation, reconstruction /);
      // The grouped Conv is not rebuilt (said so); the others are, and keep computing the same outputs.
      expect(result.passes[0]!.tensors.find((t) => t.name === 'Wg' && /sliced|groups keeps/.test(t.form!))!.form).toMatch(
        /not reconstructed \(a grouped Conv\)/,
      );
      expect(evaluation.accuracy.fidelity.y!.maxAbsError).toBeLessThan(1e-4);
    }
  });
});

/**
 * ONNX's light zoo: $ONNX_LIGHT_ZOO (then all nine models: ~20 s), else found in a .venv beside the
 * repository (then the three no layer of which was pruned before: ~5 s).
 */
const LIGHT = (() => {
  if (process.env.ONNX_LIGHT_ZOO)
    return existsSync(process.env.ONNX_LIGHT_ZOO) ? { dir: process.env.ONNX_LIGHT_ZOO, all: true } : undefined;
  for (const venv of [join(__dirname, '../../.venv/lib')]) {
    if (!existsSync(venv)) continue;
    for (const python of readdirSync(venv)) {
      const light = join(venv, python, 'site-packages/onnx/backend/test/data/light');
      if (existsSync(light)) return { dir: light, all: false };
    }
  }
  return undefined;
})();
const FORMERLY_UNPRUNED = ['light_densenet121.onnx', 'light_inception_v2.onnx', 'light_shufflenet.onnx'];

describe.skipIf(!LIGHT)('the light model zoo (from the onnx wheel; skipped without it: set ONNX_LIGHT_ZOO to its folder)', () => {
  it('prunes layers at 30 %, and each model runs in ONNX Runtime with its original outputs', async () => {
    const all = readdirSync(LIGHT!.dir).filter((f) => f.endsWith('.onnx'));
    expect(all).toHaveLength(9);
    for (const file of LIGHT!.all ? all : FORMERLY_UNPRUNED) {
      const source = join(LIGHT!.dir, file);
      const { result, evaluation, output } = await compressAndEvaluate(source, join(dir, file), [['prune', 'structured:ratio=0.3']], {
        batches: 1,
      });
      const pruned = result.passes[0]!.tensors.filter((t) => t.details?.removed !== undefined);
      expect(pruned.length, file).toBeGreaterThan(0);
      // The outputs ran in ONNX Runtime, and each has its original 1000 values (evaluate compares them one by one).
      for (const f of Object.values(evaluation.accuracy.fidelity)) expect(f.count, file).toBe(1000);
      expect(JSON.stringify(output.graph.output), file).toBe(JSON.stringify(readModel(source).graph.output));
    }
  }, 120_000);
});
