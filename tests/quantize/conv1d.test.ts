// 1-D convolutions (issue 16 item 1, "Conv1D/ConvTranspose (test the axis)"): Conv's weight
// [C_out, C_in, k] takes a scale per output channel on axis 0, ConvTranspose's [C_in, C_out, k] on
// axis 1; scales checked against max|w| / 127 per channel, outputs in ONNX Runtime.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { DataType } from '../../src/ir/onnx.js';
import { tensorValues } from '../../src/ir/tensor.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, model, node, save, tensor, values, vi } from '../convert/helpers.js';
import { cli, cosine, scratch } from '../helpers.js';

const dir = scratch();

function scalesOn(w: Float32Array, dims: number[], axis: number): number[] {
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1),
    n = dims[axis]!,
    outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, (_, c) => {
    let m = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(w[(o * n + c) * inner + i]!));
    return Math.fround(Math.fround(m) / 127);
  });
}

describe.each([
  ['Conv', [16, 8, 3], 0, [1, 8, 20], [1, 16, 18]],
  ['ConvTranspose', [8, 16, 3], 1, [1, 8, 20], [1, 16, 22]],
] as const)('%s 1-D', (op, wDims, axis, xDims, yDims) => {
  it(`int8 per channel on axis ${axis}, closed-form scales, cosine ≥ 0.999`, async () => {
    // Channels of different ranges, so that a wrong axis would give wrong scales.
    const n = wDims.reduce((a, b) => a * b, 1);
    const w = Float32Array.from(values(n, 3), (v, i) => v * (1 + (Math.floor(i / wDims[2]!) % 5)));
    const g = graph([node(op, ['x', 'W'], ['y'])], [vi('x', [...xDims])], [vi('y', [...yDims])], [tensor('W', [...wDims], Array.from(w))]);
    const original = save(join(dir, `${op}.onnx`), model(g, 17));
    const output = join(dir, `${op}-int8.onnx`);
    const r = cli(['compress', original, '-o', output, '--quantize', 'int8']);
    expect(r.code, r.stderr).toBe(0);
    const m = readModel(output);
    const dq = m.graph.node.find((x) => x.op_type === 'DequantizeLinear' && x.output[0] === 'W')!;
    expect(Number(dq.attribute.find((a) => a.name === 'axis')!.i)).toBe(axis);
    const scale = m.graph.initializer.find((t) => t.name === dq.input[1])!;
    expect(Array.from(tensorValues(scale) as Float32Array)).toEqual(scalesOn(w, [...wDims], axis));
    const x = [
      {
        name: 'x',
        dtype: DataType.FLOAT,
        dims: [...xDims],
        data: values(
          xDims.reduce((a, b) => a * b, 1),
          7,
        ),
      },
    ];
    const [a] = await run(await createSession(original), x);
    const [b] = await run(await createSession(output), x);
    expect(b!.dims).toEqual([...yDims]);
    expect(cosine(a!.data as Float32Array, b!.data as Float32Array)).toBeGreaterThanOrEqual(0.999);
  });
});
