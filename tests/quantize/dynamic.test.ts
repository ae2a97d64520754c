import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { AttributeType, DataType, type ModelProto } from '../../src/ir/onnx.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { makeNode } from '../../src/ir/build.js';
import { fixture, scratch } from '../helpers.js';
import { compressAndEvaluate } from './helpers.js';

const dir = scratch();

describe('quantize int8 dynamic (integer MatMul)', () => {
  // Measured: char LM perplexity 3.7446 → 3.7417 (−0.08 %), MLP top-1 unchanged at 0.9778, digits CNN unchanged.
  it('the language model: MatMul weights computed in integers, perplexity within 1 %', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(
      fixture('charlm', 'model.onnx'),
      join(dir, 'lm.onnx'),
      [['quantize', 'int8:mode=dynamic']],
      { data: fixture('charlm', 'test_data_set_0'), runs: 3 },
    );
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
    const { evaluation, output } = await compressAndEvaluate(
      fixture('mlp', 'model.onnx'),
      join(dir, 'mlp.onnx'),
      [['quantize', 'int8:mode=dynamic,symmetric=false']],
      { data: fixture('mlp', 'test_data_set_0'), labels: fixture('mlp', 'labels.txt') },
    );
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
    expect(output.graph.node.some((n) => n.op_type === 'Gemm')).toBe(false);
    const q = output.graph.initializer.find((t) => t.name?.endsWith('_quantized'))!;
    expect(q.data_type).toBe(2); // uint8 when asymmetric
  });

  it('weights of other ops (Conv) fall back to the weight-only form, and the report says which form each got', async () => {
    const { result, evaluation } = await compressAndEvaluate(
      fixture('digits', 'model.onnx'),
      join(dir, 'cnn.onnx'),
      [['quantize', 'int8:mode=dynamic']],
      { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') },
    );
    const forms = Object.fromEntries(result.passes[0]!.tensors.map((t) => [t.name, t.form]));
    expect(forms['conv2.weight']).toMatch(/^DequantizeLinear/);
    expect(forms['fc1.weight']).toMatch(/^MatMulInteger/);
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
  });

  // Before, the dynamic form was written into the opset-10 model anyway, and ONNX Runtime refused to load it
  // ("No Op registered for DynamicQuantizeLinear with domain_version of 10"); then the opset was left at 10
  // (Pad changed at 11) and every weight was weight-only. Now the model is converted (src/convert).
  it('an opset-10 model with Pad: converted to 13 (Pad 2→11 attributes to inputs), the dynamic form applies, and the model runs', async () => {
    const w = makeTensor(
      'W',
      DataType.FLOAT,
      [16, 16],
      new Uint8Array(Float32Array.from({ length: 256 }, (_, i) => Math.sin(i) / 4).buffer),
    );
    const io = (name: string, dims: number[]) => ({
      name,
      metadata_props: [],
      type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
    });
    const pads = {
      name: 'pads',
      type: AttributeType.INTS,
      ints: [0, 1, 0, 1],
      floats: [],
      strings: [],
      tensors: [],
      graphs: [],
      type_protos: [],
      sparse_tensors: [],
    };
    const model: ModelProto = {
      ir_version: 5,
      opset_import: [{ domain: '', version: 10 }],
      producer_name: 'onnxpress-test',
      graph: {
        name: 'pad-matmul',
        node: [makeNode('Pad', ['x'], ['p'], 'pad', [pads]), makeNode('MatMul', ['p', 'W'], ['y'], 'matmul')],
        initializer: [w],
        input: [io('x', [4, 14])],
        output: [io('y', [4, 16])],
        value_info: [],
        quantization_annotation: [],
        sparse_initializer: [],
        metadata_props: [],
      },
      metadata_props: [],
      training_info: [],
      functions: [],
      configuration: [],
    };
    const input = join(dir, 'opset10.onnx');
    writeFileSync(input, encode('onnx.ModelProto', model));
    for (const mode of ['auto', 'dynamic']) {
      const { result, evaluation, output } = await compressAndEvaluate(
        input,
        join(dir, `opset10-${mode}.onnx`),
        [['quantize', `int8:mode=${mode}`]],
        { batches: 1 },
      );
      const [summary] = result.passes;
      expect(
        summary!.tensors.map((t) => t.form),
        mode,
      ).toEqual(['MatMulInteger int8 per-column (dynamic)']);
      expect(summary!.notes.join(' '), mode).toMatch(/default opset raised from 10 to 13/);
      expect(output.proto.opset_import.find((o) => !o.domain)!.version).toBe(13);
      expect(output.graph.node.map((n) => n.op_type)).toContain('DynamicQuantizeLinear');
      expect(output.graph.node.find((n) => n.op_type === 'Pad')!.attribute).toEqual([]);
      expect(evaluation.accuracy.fidelity.y!.cosine, mode).toBeGreaterThan(0.9999);
    }
  });
});
