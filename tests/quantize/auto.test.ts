import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { fixture, scratch } from '../helpers.js';
import { compressAndEvaluate } from './helpers.js';

const dir = scratch();

/** Initializers read as the weight input of a node with this op type. */
function weightsOf(
  model: { graph: { node: { op_type?: string; input: string[] }[]; initializer: { name?: string }[] } },
  op: string,
): string[] {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.node.filter((n) => n.op_type === op && inits.has(n.input[1])).map((n) => n.input[1]!);
}

// The default int8 form is chosen per op from ONNX Runtime latencies (bench/RESULTS.md §4):
// MatMul and plain Gemm weights computed in integers, Conv and Gather weights weight-only.
describe('quantize int8 default (mode=auto): the form per op', () => {
  // Measured: perplexity 3.7446 → 3.7417 (−0.08 %), logits cosine 0.999858 (mode=weight: 3.7441, 0.999930);
  // 2.55 MB → 709,715 bytes; latency 0.60× fp32 (mode=weight 1.16–1.22×).
  it('the char LM: every MatMul weight computed in integers, the embeddings weight-only, perplexity within 0.5 %', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(
      fixture('charlm', 'model.onnx'),
      join(dir, 'lm.onnx'),
      [['quantize', 'int8']],
      { data: fixture('charlm', 'test_data_set_0') },
    );
    const [summary] = result.passes;
    expect(summary!.options.mode).toBe('auto');
    const forms = Object.fromEntries(summary!.tensors.map((t) => [t.name, t.form!]));
    const matmul = weightsOf(readModel(fixture('charlm', 'model.onnx')), 'MatMul');
    expect(matmul).toHaveLength(19);
    for (const name of matmul) expect(forms[name], name).toMatch(/^MatMulInteger int8 per-column \(dynamic\)/);
    expect(forms['tok.weight']).toMatch(/^DequantizeLinear/);
    expect(forms['pos.weight']).toMatch(/^DequantizeLinear/);
    const ops = output.graph.node.map((n) => n.op_type);
    expect(ops.filter((o) => o === 'MatMulInteger')).toHaveLength(19);
    expect(ops.filter((o) => o === 'DynamicQuantizeLinear')).toHaveLength(19);
    expect(weightsOf(output, 'MatMul')).toEqual([]);
    expect(summary!.notes).toContain(
      'auto: 19 weights (19 MatMul) dynamic, computed in integers by MatMulInteger; 2 weights (2 Gather) weight-only, through DequantizeLinear',
    );
    expect(evaluation.accuracy.metric).toBe('perplexity');
    expect(Math.abs(evaluation.accuracy.drop)).toBeLessThan(0.005);
    expect(evaluation.accuracy.fidelity.logits!.cosine).toBeGreaterThan(0.9998);
  });

  // Measured: top-1 0.9806 → 0.9806 on 360 images, logits cosine 0.999986; 155,079 → 42,765 bytes;
  // latency 1.81–2.19× fp32 (mode=weight 1.99–2.14×: the Conv's DequantizeLinear dominates either way).
  it('the digits CNN: the Conv stays DequantizeLinear (no ConvInteger), the Gemms go to integers, top-1 unchanged', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(
      fixture('digits', 'model.onnx'),
      join(dir, 'cnn.onnx'),
      [['quantize', 'int8']],
      { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') },
    );
    const forms = Object.fromEntries(result.passes[0]!.tensors.map((t) => [t.name, t.form!]));
    expect(forms).toEqual({
      'conv2.weight': 'DequantizeLinear int8 symmetric per-channel (axis 0)',
      'fc1.weight': 'MatMulInteger int8 per-column (dynamic)',
      'fc2.weight': 'MatMulInteger int8 per-column (dynamic)',
    });
    const conv2 = output.graph.node.find((n) => n.op_type === 'Conv' && n.input[1] === 'conv2.weight')!;
    expect(output.graph.node.find((n) => n.output[0] === conv2.input[1])?.op_type).toBe('DequantizeLinear');
    const ops = output.graph.node.map((n) => n.op_type);
    expect(ops.filter((o) => o === 'Conv')).toHaveLength(2);
    expect(ops).not.toContain('ConvInteger');
    expect(ops).not.toContain('Gemm');
    expect(ops.filter((o) => o === 'MatMulInteger')).toHaveLength(2);
    expect(result.passes[0]!.notes).toContain(
      'auto: 2 weights (2 Gemm) dynamic, computed in integers by MatMulInteger; 1 weight (1 Conv) weight-only, through DequantizeLinear',
    );
    expect(evaluation.accuracy.metric).toBe('top1');
    expect(evaluation.accuracy.drop).toBe(0);
    expect(evaluation.accuracy.fidelity.logits!.cosine).toBeGreaterThan(0.99995);
  });
});
