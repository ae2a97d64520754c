// Passes that need a newer opset convert an old model instead of refusing (src/ir/opset.ts calls the
// converter): int8 per-channel and int4 on an opset-9 CNN with Clip and Pad.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { scratch } from '../helpers.js';
import { float, graph, int, ints, model, node, save, tensor, values, vi, worstCosine } from './helpers.js';

const dir = scratch();

function cnn(): string {
  const w = (name: string, dims: number[], seed: number) =>
    tensor(
      name,
      dims,
      Array.from(
        values(
          dims.reduce((a, b) => a * b, 1),
          seed,
        ),
        (v) => v / 4,
      ),
    );
  const g = graph(
    [
      node('Pad', ['x'], ['p'], [ints('pads', [0, 0, 1, 1, 0, 0, 1, 1])]),
      node('Conv', ['p', 'w1', 'b1'], ['c1'], [ints('kernel_shape', [3, 3])]),
      node('Clip', ['c1'], ['r1'], [float('min', 0), float('max', 6)]),
      node('Conv', ['r1', 'w2'], ['c2'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
      node('Clip', ['c2'], ['r2'], [float('min', 0), float('max', 6)]),
      node('GlobalAveragePool', ['r2'], ['gp']),
      node('Flatten', ['gp'], ['f']),
      node('Gemm', ['f', 'w3', 'b3'], ['logits'], [int('transB', 1)]),
      node('Softmax', ['logits'], ['y']),
    ],
    [vi('x', [1, 3, 16, 16])],
    [vi('y', [1, 24])],
    [w('w1', [16, 3, 3, 3], 2), w('b1', [16], 3), w('w2', [32, 16, 3, 3], 4), w('w3', [24, 32], 5), w('b3', [24], 6)],
  );
  return save(join(dir, 'cnn9.onnx'), model(g, 9));
}

describe('quantizing an opset-9 model', () => {
  // int4 on random 3×3 kernels loses more than int8: its bar is lower; the point is that it applies and runs.
  for (const [spec, bar] of [
    ['int8:granularity=channel,mode=weight', 0.999],
    ['int8', 0.999],
    ['int4:block=32,format=dq', 0.95],
  ] as const) {
    it(`${spec}: the model is converted (opset raised, Clip and Pad adapted) and its output keeps cosine ≥ ${bar} in ONNX Runtime`, async () => {
      const original = cnn();
      const out = join(dir, `${spec.replace(/[^a-z0-9]/gi, '_')}.onnx`);
      const result = await compress(original, out, { steps: [parseStep('quantize', spec)], threads: 1 });
      const [summary] = result.passes;
      expect(summary!.notes.join(' ')).toMatch(/default opset raised from 9 to (13|21)/);
      expect(summary!.tensors.map((t) => t.name)).toContain('w2');
      if (spec.includes('channel')) for (const t of summary!.tensors) expect(t.form).toMatch(/per-channel/);
      const opset = Number(result.model.proto.opset_import.find((o) => !o.domain)!.version);
      expect(opset).toBeGreaterThanOrEqual(13);
      expect(
        result.model.graph.node.filter((n) => n.op_type === 'Clip').every((n) => n.attribute.length === 0 && n.input.length === 3),
      ).toBe(true);
      expect(await worstCosine(original, out, [1, 3, 16, 16])).toBeGreaterThanOrEqual(bar);
    });
  }
});
