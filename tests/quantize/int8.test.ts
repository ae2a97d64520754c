import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { readModel } from '../../src/io/read.js';
import { floatValues } from '../../src/ir/tensor.js';
import { replaceInput, removeUnusedInitializers } from '../../src/ir/rewrite.js';
import { cli, fixture, scratch } from '../helpers.js';
import { compressAndEvaluate, dequantized } from './helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const digitsData = { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') };

// The default (mode=auto) computes MatMul/Gemm weights in integers (tests/quantize/auto.test.ts);
// these tests are about the weight-only DequantizeLinear form, so they ask for it.
describe('quantize int8 (weight-only)', () => {
  // Bounds measured on the digits CNN (360 test images): every variant keeps top-1 at 0.9806 (drop 0);
  // output cosine ≥ 0.99999 per-channel, ≥ 0.9999 per-tensor. The bounds leave a little room.
  it.each([
    ['int8:mode=weight', 0.9999],
    ['int8:mode=weight,granularity=tensor', 0.999],
    ['int8:mode=weight,symmetric=false', 0.9999],
    ['int8:mode=weight,granularity=tensor,symmetric=false', 0.999],
    ['int8:mode=weight,search=mse', 0.9999],
  ])('%s: runs in ONNX Runtime, ≥3× smaller weights, accuracy kept', async (spec, minCosine) => {
    const path = join(dir, `digits-${spec.replace(/[:=,]/g, '_')}.onnx`);
    const { result, evaluation, output } = await compressAndEvaluate(DIGITS, path, [['quantize', spec]], digitsData);
    expect(evaluation.accuracy.metric).toBe('top1');
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
    expect(evaluation.accuracy.fidelity.logits!.cosine).toBeGreaterThan(minCosine);
    expect(statSync(path).size).toBeLessThan(statSync(DIGITS).size / 3);
    const [summary] = result.passes;
    expect(summary!.tensors.map((t) => t.name).sort()).toEqual(['conv2.weight', 'fc1.weight', 'fc2.weight']);
    expect(summary!.skipped).toContainEqual({ name: 'conv1.weight', reason: '144 elements, below min-size 256', chosen: true });
    const dq = output.graph.node.filter((n) => n.op_type === 'DequantizeLinear');
    expect(dq).toHaveLength(3);
    // Per-channel scales follow each op's output axis: Conv axis 0, Gemm with transB=1 axis 0.
    if (!spec.includes('tensor')) {
      for (const node of dq) expect(node.attribute.find((a) => a.name === 'axis')?.i).toBe(0);
      const scale = output.graph.initializer.find((t) => t.name === 'fc1.weight_scale')!;
      expect(scale.dims).toEqual([64]);
    }
    // The error the pass reports is the error of the values the model now computes with.
    const original = readModel(DIGITS);
    const before = floatValues(original.graph.initializer.find((t) => t.name === 'fc1.weight')!);
    const after = dequantized(output, 'fc1.weight');
    let maxAbs = 0;
    for (let i = 0; i < before.length; i++) maxAbs = Math.max(maxAbs, Math.abs(before[i]! - after[i]!));
    expect(summary!.tensors.find((t) => t.name === 'fc1.weight')!.maxAbsError).toBeCloseTo(maxAbs, 9);
  });

  it('the mse scale search lowers the weight error and reports it before and after', async () => {
    const { result } = await compressAndEvaluate(
      DIGITS,
      join(dir, 'mse.onnx'),
      [['quantize', 'int8:granularity=tensor,search=mse']],
      digitsData,
    );
    for (const t of result.passes[0]!.tensors) {
      expect(t.details!.relRmsErrorMinMax).toBeGreaterThanOrEqual(t.relRmsError!);
    }
  });

  it('keeps pruned zeros exactly zero (symmetric and asymmetric)', async () => {
    const model = readModel(DIGITS);
    const fc1 = model.graph.initializer.find((t) => t.name === 'fc1.weight')!;
    const values = Float32Array.from(floatValues(fc1));
    for (let i = 0; i < values.length; i += 2) values[i] = 0;
    fc1.raw_data = new Uint8Array(values.buffer);
    const pruned = join(dir, 'pruned.onnx');
    writeFileSync(pruned, encode('onnx.ModelProto', model.proto));
    for (const spec of [
      'int8:mode=weight',
      'int8:mode=weight,symmetric=false',
      'int8:mode=weight,granularity=tensor,symmetric=false,search=mse',
    ]) {
      const { output, result } = await compressAndEvaluate(
        pruned,
        join(dir, `pz-${spec.replace(/[:=,]/g, '_')}.onnx`),
        [['quantize', spec]],
        digitsData,
      );
      const after = dequantized(output, 'fc1.weight');
      for (let i = 0; i < values.length; i += 2) expect(after[i]).toBe(0);
      expect(result.passes[0]!.tensors.find((t) => t.name === 'fc1.weight')!.sparsity).toBeGreaterThanOrEqual(0.5);
    }
  });

  it('finds weights inside If branches and in Constant nodes, and the outputs stay close', async () => {
    for (const name of ['if_subgraph', 'constants', 'loop_scan']) {
      const input = fixture('conformance', name, 'model.onnx');
      const { result, evaluation } = await compressAndEvaluate(input, join(dir, `${name}-q8.onnx`), [['quantize', 'int8:min-size=0']], {
        data: fixture('conformance', name),
      });
      expect(result.passes[0]!.tensors.length, name).toBeGreaterThan(0);
      for (const f of Object.values(evaluation.accuracy.fidelity)) expect(f.cosine, name).toBeGreaterThan(0.999);
    }
  });

  it('quantizes a weight shared by several consumers once', async () => {
    const model = readModel(fixture('repeated', 'model.onnx'));
    const w1 = model.graph.initializer.filter((t) => /^block\d\.W1$/.test(t.name ?? '')).map((t) => t.name!);
    expect(w1).toHaveLength(4);
    for (const other of w1.slice(1)) replaceInput(model.graph, other, w1[0]!);
    removeUnusedInitializers(model.graph);
    const shared = join(dir, 'shared.onnx');
    writeFileSync(shared, encode('onnx.ModelProto', model.proto));
    const { result, output } = await compressAndEvaluate(shared, join(dir, 'shared-q8.onnx'), [['quantize', 'int8:mode=weight']], {
      data: fixture('repeated', 'test_data_set_0'),
    });
    expect(result.passes[0]!.tensors.filter((t) => t.name === w1[0])).toHaveLength(1);
    const dq = output.graph.node.filter((n) => n.op_type === 'DequantizeLinear' && n.output[0] === w1[0]);
    expect(dq).toHaveLength(1);
    // The default computes each of the four MatMuls in integers, all from the one set of codes.
    const auto = await compressAndEvaluate(shared, join(dir, 'shared-auto.onnx'), [['quantize', 'int8']], {
      data: fixture('repeated', 'test_data_set_0'),
    });
    expect(auto.result.passes[0]!.tensors.filter((t) => t.name === w1[0])).toHaveLength(1);
    expect(auto.output.graph.node.filter((n) => n.op_type === 'MatMulInteger' && n.input[1] === `${w1[0]}_quantized`)).toHaveLength(4);
    for (const f of Object.values(auto.evaluation.accuracy.fidelity)) expect(f.cosine).toBeGreaterThan(0.999);
  });

  it('keeps excluded layers in float (mixed precision) and skips integer tensors with a reason', async () => {
    const { result, output } = await compressAndEvaluate(
      DIGITS,
      join(dir, 'mixed.onnx'),
      [['quantize', 'int8:exclude=fc2*|conv2*']],
      digitsData,
    );
    expect(result.passes[0]!.tensors.map((t) => t.name)).toEqual(['fc1.weight']);
    expect(result.passes[0]!.skipped).toContainEqual({ name: 'fc2.weight', reason: 'matches exclude pattern', chosen: true });
    expect(output.graph.initializer.find((t) => t.name === 'fc2.weight')?.data_type).toBe(1);
  });

  it('raises an old opset when no op changed meaning, and per-tensor stays within opset 10', async () => {
    const { result, output } = await compressAndEvaluate(
      fixture('conformance', 'ir3_init_as_inputs', 'model.onnx'),
      join(dir, 'ir3-q8.onnx'),
      [['quantize', 'int8:min-size=0']],
      { data: fixture('conformance', 'ir3_init_as_inputs') },
    );
    expect(result.passes[0]!.tensors.length).toBeGreaterThan(0);
    expect(result.passes[0]!.notes.join(' ')).toMatch(/opset raised from 8 to 13/);
    expect(Number(output.proto.ir_version)).toBeGreaterThanOrEqual(7);
  });

  it('validates the whole pipeline before reading anything (exit 2, nothing written)', () => {
    const target = join(dir, 'never.onnx');
    for (const bad of [
      ['--quantize', 'int9'],
      ['--quantize', 'int8:granularity=row'],
      ['--quantize', 'int8:bogus=1'],
      ['--quantize', 'int4:block=7'],
      ['--prune', 'magnitude:sparsity=1.5'],
      ['--share', 'nothing'],
    ]) {
      const r = cli(['compress', DIGITS, '-o', target, ...bad]);
      expect(r.code, bad.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(() => statSync(target)).toThrow();
    expect(readFileSync(DIGITS).length).toBe(155079);
  });
});

describe('quantize a model with external data', () => {
  // Its three weights feed MatMuls: the default computes them in integers, mode=weight dequantizes them.
  it.each([
    ['int8:min-size=0', 'MatMulInteger'],
    ['int8:min-size=0,mode=weight', 'DequantizeLinear'],
  ])('%s reads the weights from the data file, writes a new one, and the result runs', async (spec, op) => {
    const dir2 = scratch();
    const out = join(dir2, 'ext-q8.onnx');
    const { result, evaluation, output } = await compressAndEvaluate(
      fixture('conformance', 'external', 'model.onnx'),
      out,
      [['quantize', spec]],
      { data: fixture('conformance', 'external') },
    );
    expect(result.passes[0]!.tensors.map((t) => t.name).sort()).toEqual(['W1', 'W2', 'W3']);
    expect(result.output.files.length).toBeGreaterThanOrEqual(1);
    for (const f of Object.values(evaluation.accuracy.fidelity)) expect(f.cosine).toBeGreaterThan(0.9999);
    expect(output.graph.node.filter((n) => n.op_type === op)).toHaveLength(3);
  });
});
