import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, scratch } from '../helpers.js';
import { compressAndEvaluate } from './helpers.js';

const dir = scratch();

describe('quantize int8 dynamic (integer MatMul)', () => {
  // Measured: char LM perplexity 3.7446 → 3.7417 (−0.08 %), MLP top-1 unchanged at 0.9778, digits CNN unchanged.
  it('the language model: MatMul weights computed in integers, perplexity within 1 %', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(fixture('charlm', 'model.onnx'), join(dir, 'lm.onnx'),
      [['quantize', 'int8:mode=dynamic']], { data: fixture('charlm', 'test_data_set_0'), runs: 3 });
    expect(Math.abs(evaluation.accuracy.drop)).toBeLessThan(0.01);
    const ops = output.graph.node.map((n) => n.op_type);
    expect(ops.filter((o) => o === 'MatMulInteger').length).toBe(ops.filter((o) => o === 'DynamicQuantizeLinear').length);
    // The MatMuls left are attention products of two activations: none reads a weight.
    const inits = new Set(output.graph.initializer.map((t) => t.name));
    expect(output.graph.node.filter((n) => n.op_type === 'MatMul' && inits.has(n.input[1]))).toEqual([]);
    expect(result.passes[0]!.tensors.filter((t) => t.form!.includes('MatMulInteger')).length).toBeGreaterThanOrEqual(18);
    expect(evaluation.latency!.ratio).toBeGreaterThan(0);
  });

  it('Gemm with transB (the MLP): weights stored transposed, accuracy kept', async () => {
    const { evaluation, output } = await compressAndEvaluate(fixture('mlp', 'model.onnx'), join(dir, 'mlp.onnx'),
      [['quantize', 'int8:mode=dynamic,symmetric=false']], { data: fixture('mlp', 'test_data_set_0'), labels: fixture('mlp', 'labels.txt') });
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
    expect(output.graph.node.some((n) => n.op_type === 'Gemm')).toBe(false);
    const q = output.graph.initializer.find((t) => t.name?.endsWith('_quantized'))!;
    expect(q.data_type).toBe(2); // uint8 when asymmetric
  });

  it('weights of other ops (Conv) fall back to the weight-only form, and the report says which form each got', async () => {
    const { result, evaluation } = await compressAndEvaluate(fixture('digits', 'model.onnx'), join(dir, 'cnn.onnx'),
      [['quantize', 'int8:mode=dynamic']], { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') });
    const forms = Object.fromEntries(result.passes[0]!.tensors.map((t) => [t.name, t.form]));
    expect(forms['conv2.weight']).toMatch(/^DequantizeLinear/);
    expect(forms['fc1.weight']).toMatch(/^MatMulInteger/);
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
  });
});
