// int4:requantize=true (issue 16 item 3): weights already held as 8-bit codes behind a
// DequantizeLinear are put back as the float values it computes, then quantized to 4 bits.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { Model } from '../../src/ir/model.js';
import { DataType, type TensorProto } from '../../src/ir/onnx.js';
import { floatValues } from '../../src/ir/tensor.js';
import { restoreInt8Weights } from '../../src/quantize/requantize.js';
import { graph, int, model, node, vi } from '../convert/helpers.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();

function raw(name: string, dims: number[], dataType: number, bytes: Uint8Array): TensorProto {
  return {
    name,
    dims,
    data_type: dataType,
    raw_data: bytes,
    float_data: [],
    int32_data: [],
    string_data: [],
    int64_data: [],
    double_data: [],
    uint64_data: [],
    external_data: [],
    metadata_props: [],
  };
}

describe('restoreInt8Weights', () => {
  it("gives (code − zero point) · scale, per axis and per tensor, under the DequantizeLinear's output name", () => {
    const codes = Int8Array.of(-128, -1, 0, 1, 127, 5);
    const scales = Float32Array.of(0.5, 0.25);
    const u8 = Uint8Array.of(0, 10, 255, 128);
    const g = graph(
      [
        node('DequantizeLinear', ['Wq', 'Ws'], ['W'], [int('axis', 1)]),
        node('MatMul', ['x', 'W'], ['y']),
        node('DequantizeLinear', ['Uq', 'Us', 'Uz'], ['U']),
        node('MatMul', ['y', 'U'], ['z']),
      ],
      [vi('x', [1, 3])],
      [vi('z', [1, 2])],
      [
        raw('Wq', [3, 2], DataType.INT8, new Uint8Array(codes.buffer)),
        raw('Ws', [2], DataType.FLOAT, new Uint8Array(scales.buffer)),
        raw('Uq', [2, 2], DataType.UINT8, u8),
        raw('Us', [], DataType.FLOAT, new Uint8Array(Float32Array.of(0.1).buffer)),
        raw('Uz', [], DataType.UINT8, Uint8Array.of(128)),
      ],
    );
    const m = new Model(model(g, 13));
    const restored = restoreInt8Weights(m);
    expect(restored).toEqual([
      { name: 'W', from: 'int8 per-axis' },
      { name: 'U', from: 'uint8 per-tensor' },
    ]);
    const init = new Map(m.graph.initializer.map((t) => [t.name, t]));
    expect([...init.keys()].sort()).toEqual(['U', 'W']);
    expect(Array.from(floatValues(init.get('W')!))).toEqual([-64, -0.25, 0, 0.25, 63.5, 1.25]);
    expect(Array.from(floatValues(init.get('U')!))).toEqual([-128, -118, 127, 0].map((v) => Math.fround(v * Math.fround(0.1))));
    expect(m.graph.node.map((n) => n.op_type)).toEqual(['MatMul', 'MatMul']);
  });
});

describe('int4:requantize=true on an int8 model', () => {
  it('reaches the size of 4 bits from float32, with the accuracy of it (char LM)', () => {
    const int8 = join(dir, 'charlm-int8.onnx');
    expect(cli(['compress', fixture('charlm', 'model.onnx'), '-o', int8, '--quantize', 'int8:mode=weight']).code).toBe(0);
    // Without it, the 8-bit weights are left as they are, and said to be.
    const plain = cli(['compress', int8, '-o', join(dir, 'plain.onnx'), '--quantize', 'int4']);
    expect(plain.stdout).toMatch(/21 tensors skipped: already int8 \(DequantizeLinear per-axis\)/);
    const out = join(dir, 'charlm-int8-int4.onnx');
    const r = cli(['compress', int8, '-o', out, '--quantize', 'int4:requantize=true', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/requantize: 21 weights behind an 8-bit DequantizeLinear \(int8 per-axis\)/);
    const direct = join(dir, 'charlm-int4.onnx');
    expect(cli(['compress', fixture('charlm', 'model.onnx'), '-o', direct, '--quantize', 'int4']).code).toBe(0);
    const args = (m: string) => [
      'eval',
      m,
      '--reference',
      fixture('charlm', 'model.onnx'),
      '--data',
      fixture('charlm', 'test_data_set_0'),
      '--labels',
      fixture('charlm', 'labels_0.npy'),
      '--runs',
      '0',
      '--json',
    ];
    const ppl = (m: string) => (JSON.parse(cli(args(m)).stdout) as { accuracy: { compressed: number } }).accuracy.compressed;
    const requantized = ppl(out),
      fromFloat = ppl(direct);
    expect(Math.abs(requantized / fromFloat - 1)).toBeLessThan(0.01);
    expect(readModel(out).graph.node.filter((n) => n.op_type === 'MatMulNBits').length).toBeGreaterThan(0);
  });
});
