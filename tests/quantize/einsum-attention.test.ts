// int8 on Einsum's constant operand and on com.microsoft Attention's QKV weights (issue 16 item 1):
// weight-only, a scale per output channel on the axis the equation (or the op) says.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { DataType } from '../../src/ir/onnx.js';
import { tensorValues } from '../../src/ir/tensor.js';
import { weightRole } from '../../src/ir/weights.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, int, model, node, save, str, tensor, values, vi } from '../convert/helpers.js';
import { cli, cosine, scratch } from '../helpers.js';

const dir = scratch();
const D = 64,
  E = 32,
  S = 8;

describe('Einsum operand axes from the equation', () => {
  it.each([
    ['bsd,de->bse', 1, 2, { outputAxis: 1, reductionAxis: 0 }],
    ['ij,kj->ik', 1, 2, { outputAxis: 0, reductionAxis: 1 }],
    ['bhqd,hd->bhq', 1, 2, { outputAxis: 0, reductionAxis: 1 }],
    ['...d,de->...e', 1, 2, undefined],
    ['ij,jk', 1, 2, undefined],
    ['ij,jk->ik', 1, 3, undefined],
  ])('%s operand %i (rank %i)', (equation, index, rank, want) => {
    const role = weightRole(node('Einsum', ['a', 'b'], ['y'], [str('equation', equation)]), index, rank);
    expect(role && { outputAxis: role.outputAxis, reductionAxis: role.reductionAxis }).toEqual(want);
  });
});

describe('int8 on Attention and Einsum weights', () => {
  it('weight-only per output channel (axis 1 of [D, 3D] and of [D, E]), closed-form scales, cosine ≥ 0.999 in ONNX Runtime', async () => {
    const g = graph(
      [
        node('Attention', ['x', 'W', 'B'], ['a'], [int('num_heads', 4)], 'com.microsoft'),
        node('Einsum', ['a', 'P'], ['y'], [str('equation', 'bsd,de->bse')]),
      ],
      [vi('x', [1, S, D])],
      [vi('y', [1, S, E])],
      [
        tensor(
          'W',
          [D, 3 * D],
          Array.from(values(D * 3 * D, 3), (v) => v * 0.05),
        ),
        tensor('B', [3 * D], new Array(3 * D).fill(0)),
        tensor(
          'P',
          [D, E],
          Array.from(values(D * E, 4), (v) => v * 0.1),
        ),
      ],
    );
    const original = save(
      join(dir, 'attn.onnx'),
      model(g, 14, {
        opset_import: [
          { domain: '', version: 14 },
          { domain: 'com.microsoft', version: 1 },
        ],
      }),
    );
    const output = join(dir, 'attn-int8.onnx');
    const r = cli(['compress', original, '-o', output, '--quantize', 'int8']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 weights \(1 Attention, 1 Einsum\) weight-only/);
    const m = readModel(output);
    for (const [name, cols] of [
      ['W', 3 * D],
      ['P', E],
    ] as const) {
      const dq = m.graph.node.find((n) => n.op_type === 'DequantizeLinear' && n.output[0] === name)!;
      expect(Number(dq.attribute.find((a) => a.name === 'axis')!.i)).toBe(1);
      const scale = Array.from(tensorValues(m.graph.initializer.find((t) => t.name === dq.input[1])!) as Float32Array);
      const w = tensorValues(g.initializer.find((t) => t.name === name)!) as Float32Array;
      const want = Array.from({ length: cols }, (_, c) => {
        let max = 0;
        for (let row = 0; row < D; row++) max = Math.max(max, Math.abs(w[row * cols + c]!));
        return Math.fround(Math.fround(max) / 127);
      });
      expect(scale).toEqual(want);
      expect(m.graph.initializer.find((t) => t.name === dq.input[0])!.data_type).toBe(DataType.INT8);
    }
    const x = [{ name: 'x', dtype: DataType.FLOAT, dims: [1, S, D], data: values(S * D, 9) }];
    const [a] = await run(await createSession(original), x);
    const [b] = await run(await createSession(output), x);
    expect(cosine(a!.data as Float32Array, b!.data as Float32Array)).toBeGreaterThanOrEqual(0.999);
  });
});
