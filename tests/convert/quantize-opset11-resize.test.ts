// An opset-11 CNN shaped like an OCR text detector (Conv, Clip with min/max inputs, Relu, Resize
// upsampling by scales and by sizes, Concat, Pad with pads as an input): int8 per-channel and int4
// need a newer opset than 11 (DequantizeLinear's axis at 13, int4 at 21), so the passes convert the
// model first (Resize changed at 13), then quantize; checked in ONNX Runtime against the original.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { scratch } from '../helpers.js';
import { INT64, graph, int, ints, model, node, save, str, tensor, values, vi, worstCosine } from './helpers.js';

const dir = scratch();

function detector(): string {
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
      // Pad-11: pads and the constant value are inputs.
      node('Pad', ['x', 'pads', 'pad_value'], ['p'], [str('mode', 'constant')]),
      node('Conv', ['p', 'w1', 'b1'], ['c1'], [ints('kernel_shape', [3, 3]), ints('strides', [2, 2])]),
      // Clip-11: min and max are inputs (ReLU6).
      node('Clip', ['c1', 'clip_min', 'clip_max'], ['r1']),
      node('Conv', ['r1', 'w2', 'b2'], ['c2'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), ints('strides', [2, 2])]),
      node('Relu', ['c2'], ['r2']),
      // Resize-11 by scales: nearest, as PyTorch exports F.interpolate(scale_factor=2) at opset 11.
      node(
        'Resize',
        ['r2', 'roi', 'scales'],
        ['u2'],
        [str('mode', 'nearest'), str('coordinate_transformation_mode', 'asymmetric'), str('nearest_mode', 'floor')],
      ),
      node('Concat', ['u2', 'r1'], ['cat'], [int('axis', 1)]),
      node('Conv', ['cat', 'w3', 'b3'], ['c3'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
      node('Relu', ['c3'], ['r3']),
      // Resize-11 by sizes (scales empty): bilinear back to the input's size.
      node(
        'Resize',
        ['r3', 'roi', 'no_scales', 'sizes'],
        ['u3'],
        [str('mode', 'linear'), str('coordinate_transformation_mode', 'half_pixel')],
      ),
      node('Conv', ['u3', 'w4', 'b4'], ['c4'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
      node('Sigmoid', ['c4'], ['y']),
    ],
    [vi('x', [1, 3, 32, 32])],
    [vi('y', [1, 2, 32, 32])],
    [
      tensor('pads', [8], [0, 0, 1, 1, 0, 0, 0, 0], INT64),
      tensor('pad_value', [], [0]),
      tensor('clip_min', [], [0]),
      tensor('clip_max', [], [6]),
      tensor('roi', [0], []),
      tensor('scales', [4], [1, 1, 2, 2]),
      tensor('no_scales', [0], []),
      tensor('sizes', [4], [1, 16, 32, 32], INT64),
      w('w1', [16, 3, 3, 3], 2),
      w('b1', [16], 3),
      w('w2', [32, 16, 3, 3], 4),
      w('b2', [32], 5),
      w('w3', [16, 48, 3, 3], 6),
      w('b3', [16], 7),
      w('w4', [2, 16, 3, 3], 8),
      w('b4', [2], 9),
    ],
  );
  return save(join(dir, 'detector11.onnx'), model(g, 11, { ir_version: 6 }));
}

describe('quantizing an opset-11 detector with Resize', () => {
  // int4's bar: a 4-bit step is ~18× int8's (7 levels a side against 127), so the output error
  // (1 − cosine, which goes with the step squared) grows by up to ~300×: int8 measures 1 − cos =
  // 2.7e-4 here, which predicts ~0.08 for plain rounding; per-block scales and the scale search give
  // 0.978 (worst of 3 inputs). 0.97 leaves room for other inputs.
  for (const [spec, bar] of [
    ['int8', 0.999],
    ['int8:granularity=channel,mode=weight', 0.999],
    ['int4:block=32,format=dq', 0.97],
  ] as const) {
    it(`${spec}: the model is converted (opset raised past Resize-13) and its output keeps cosine ≥ ${bar} in ONNX Runtime`, async () => {
      const original = detector();
      const out = join(dir, `${spec.replace(/[^a-z0-9]/gi, '_')}.onnx`);
      const result = await compress(original, out, { steps: [parseStep('quantize', spec)], threads: 1 });
      const [summary] = result.passes;
      expect(summary!.notes.join(' ')).toMatch(/default opset raised from 11 to (13|21)/);
      const names = summary!.tensors.map((t) => t.name).sort();
      expect(names).toEqual(['w1', 'w2', 'w3', 'w4']);
      for (const t of summary!.tensors) expect(t.form).toMatch(spec.startsWith('int4') ? /block/ : /per-channel/);
      const opset = Number(result.model.proto.opset_import.find((o) => !o.domain)!.version);
      expect(opset).toBeGreaterThanOrEqual(spec.startsWith('int4') ? 21 : 13);
      expect(result.model.graph.node.filter((n) => n.op_type === 'Resize')).toHaveLength(2);
      expect(result.model.graph.node.filter((n) => n.op_type === 'DequantizeLinear')).toHaveLength(4);
      expect(await worstCosine(original, out, [1, 3, 32, 32])).toBeGreaterThanOrEqual(bar);
    });
  }
});
