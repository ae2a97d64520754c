// Each adapter on a model built at the old opset: converted, then run in ONNX Runtime against the
// original on the same inputs (outputs equal within 1e-5).
import { describe, expect, it } from 'vitest';
import { conversionLine } from '../../src/convert/convert.js';
import { scratch } from '../helpers.js';
import {
  BOOL,
  INT64,
  expectSameOutputs,
  float,
  floats,
  graph,
  graphAttr,
  input,
  int,
  ints,
  model,
  node,
  opsOf,
  str,
  tensor,
  vi,
} from './helpers.js';

const dir = scratch();
const lines = (s: { converted: Parameters<typeof conversionLine>[0][] }) => s.converted.map(conversionLine);

describe('adapters: attributes that became inputs', () => {
  it('Clip 6→11: min/max attributes to inputs (both, one, none), to 11, 13 and 21', async () => {
    const g = graph(
      [
        node('Clip', ['x'], ['a'], [float('min', -0.5), float('max', 0.75)]),
        node('Clip', ['a'], ['b'], [float('max', 0.5)]),
        node('Clip', ['b'], ['y'], [float('min', -0.25)]),
        node('Clip', ['x'], ['z']),
      ],
      [vi('x', [2, 3, 4])],
      [vi('y', [2, 3, 4]), vi('z', [2, 3, 4])],
    );
    for (const target of [11, 13, 21]) {
      const { summary, proto } = await expectSameOutputs(dir, 'clip', model(g, 9), target, [input('x', [2, 3, 4])]);
      expect(lines(summary)).toContain('Clip 6→' + (target === 11 ? 11 : 13) + ': min/max attributes to inputs ×4');
      expect(proto.graph!.node.filter((n) => n.op_type === 'Clip').every((n) => n.attribute.length === 0)).toBe(true);
    }
  });

  it('Pad 2→11: pads and a non-zero constant value to inputs; reflect and edge modes', async () => {
    const g = graph(
      [
        node('Pad', ['x'], ['a'], [ints('pads', [0, 1, 2, 0, 0, 1, 0, 3]), float('value', 1.5)]),
        node('Pad', ['a'], ['b'], [ints('pads', [0, 0, 1, 1, 0, 0, 1, 1]), str('mode', 'reflect')]),
        node('Pad', ['b'], ['y'], [ints('pads', [0, 0, 2, 0, 0, 0, 0, 2]), str('mode', 'edge')]),
      ],
      [vi('x', [1, 2, 3, 4])],
      [vi('y')],
    );
    for (const target of [11, 13, 21]) {
      const { summary } = await expectSameOutputs(dir, 'pad', model(g, 9), target, [input('x', [1, 2, 3, 4])]);
      expect(lines(summary).join()).toMatch(/Pad 2→\d+: pads\/value attributes to inputs ×3/);
    }
  });

  it('Slice 1→10: starts/ends/axes to inputs, with negative and huge ends, without axes', async () => {
    const g = graph(
      [
        node('Slice', ['x'], ['a'], [ints('starts', [1, -3]), ints('ends', [9223372036854775807n, -1]), ints('axes', [0, 2])]),
        node('Slice', ['a'], ['y'], [ints('starts', [0, 1]), ints('ends', [1, 1000])]),
      ],
      [vi('x', [3, 4, 5])],
      [vi('y')],
    );
    for (const target of [10, 13, 21]) {
      const { summary } = await expectSameOutputs(dir, 'slice', model(g, 9), target, [input('x', [3, 4, 5])]);
      expect(lines(summary).join()).toMatch(/Slice 1→\d+: starts\/ends\/axes attributes to inputs ×2/);
    }
  });

  it('TopK 1→10: k to an input; both outputs', async () => {
    const g = graph(
      [node('TopK', ['x'], ['v', 'i'], [int('k', 2), int('axis', 1)])],
      [vi('x', [3, 5])],
      [vi('v'), vi('i', undefined, INT64)],
    );
    for (const target of [10, 11, 21]) {
      const { summary } = await expectSameOutputs(dir, 'topk', model(g, 9), target, [input('x', [3, 5])]);
      expect(lines(summary).join()).toMatch(/TopK 1→\d+: k attribute to input ×1/);
    }
  });

  it('ReduceSum 11→13 and the other reductions 11→18: axes to inputs; no axes; keepdims 0', async () => {
    const g = graph(
      [
        node('ReduceSum', ['x'], ['s'], [ints('axes', [1])]),
        node('ReduceMean', ['x'], ['m'], [ints('axes', [-1]), int('keepdims', 0)]),
        node('ReduceMax', ['x'], ['mx']),
        node('ReduceL2', ['x'], ['l2'], [ints('axes', [0, 2])]),
        node('ReduceLogSumExp', ['x'], ['lse'], [ints('axes', [2])]),
        node('ReduceSumSquare', ['x'], ['ss'], [ints('axes', [0])]),
        node('ReduceProd', ['x'], ['p'], [ints('axes', [1]), int('keepdims', 0)]),
      ],
      [vi('x', [2, 3, 4])],
      ['s', 'm', 'mx', 'l2', 'lse', 'ss', 'p'].map((n) => vi(n)),
    );
    for (const target of [13, 18, 21]) {
      const { summary } = await expectSameOutputs(dir, 'reduce', model(g, 11), target, [input('x', [2, 3, 4])]);
      const text = lines(summary).join('\n');
      expect(text).toMatch(/ReduceSum 11→13: axes attribute to input ×1/);
      if (target >= 18) expect(text).toMatch(/ReduceMean 11→18: axes attribute to input ×1/);
    }
  });

  it('Split 11→13 (split to an input) and 13→18 (equal parts get num_outputs)', async () => {
    const g = graph(
      [node('Split', ['x'], ['a', 'b'], [int('axis', 1), ints('split', [1, 3])]), node('Split', ['x'], ['c', 'd'], [int('axis', 2)])],
      [vi('x', [2, 4, 6])],
      ['a', 'b', 'c', 'd'].map((n) => vi(n)),
    );
    for (const target of [13, 18, 21]) {
      const { summary, proto } = await expectSameOutputs(dir, 'split', model(g, 11), target, [input('x', [2, 4, 6])]);
      expect(lines(summary).join()).toMatch(/Split 11→\d+: split attribute to input ×1/);
      if (target >= 18)
        expect(proto.graph!.node.find((n) => n.output[0] === 'c')!.attribute.some((a) => a.name === 'num_outputs')).toBe(true);
    }
  });

  it('Squeeze and Unsqueeze 11→13: axes to inputs; Squeeze with no axes', async () => {
    const g = graph(
      [
        node('Unsqueeze', ['x'], ['u'], [ints('axes', [0, -1])]),
        node('Squeeze', ['u'], ['s'], [ints('axes', [0])]),
        node('Squeeze', ['u'], ['all']),
      ],
      [vi('x', [3, 1, 4])],
      [vi('s'), vi('all')],
    );
    for (const target of [13, 21]) await expectSameOutputs(dir, 'squeeze', model(g, 11), target, [input('x', [3, 1, 4])]);
  });

  it('Dropout 7→12: ratio to an input, an unread mask dropped at 10', async () => {
    const g = graph([node('Dropout', ['x'], ['y', 'mask'], [float('ratio', 0.3)])], [vi('x', [2, 3])], [vi('y')]);
    for (const target of [10, 12, 13, 21]) {
      const { summary, proto } = await expectSameOutputs(dir, 'dropout', model(g, 9), target, [input('x', [2, 3])]);
      expect(proto.graph!.node.find((n) => n.op_type === 'Dropout')!.output).toEqual(['y']);
      if (target >= 12) expect(lines(summary).join()).toMatch(/unread mask output dropped.*; ratio attribute to input/);
    }
  });

  it('Upsample 7→9 (scales to an input), →Resize at 10, Resize 10→11 (nearest and linear)', async () => {
    const g = graph(
      [
        node('Upsample', ['x'], ['n'], [floats('scales', [1, 1, 2, 3])]),
        node('Upsample', ['x'], ['l'], [floats('scales', [1, 1, 2, 2]), str('mode', 'linear')]),
      ],
      [vi('x', [1, 2, 3, 4])],
      [vi('n'), vi('l')],
    );
    for (const target of [9, 10, 11, 13, 18, 19, 21]) {
      const { summary, proto } = await expectSameOutputs(dir, 'upsample', model(g, 8, { ir_version: 3 }), target, [
        input('x', [1, 2, 3, 4]),
      ]);
      if (target >= 10) {
        expect(opsOf(proto).filter((o) => o === 'Resize')).toHaveLength(2);
        expect(summary.converted[0]!.becomes).toBe('Resize');
      }
    }
  });

  it('Resize 10→11: up and down, nearest and linear', async () => {
    const scales = (name: string, v: number[]) => tensor(name, [4], v);
    const g = graph(
      [
        node('Resize', ['x', 'up'], ['a']),
        node('Resize', ['x', 'down'], ['b']),
        node('Resize', ['x', 'up'], ['c'], [str('mode', 'linear')]),
        node('Resize', ['x', 'down'], ['d'], [str('mode', 'linear')]),
      ],
      [vi('x', [1, 2, 6, 8])],
      ['a', 'b', 'c', 'd'].map((n) => vi(n)),
      [scales('up', [1, 1, 1.5, 2]), scales('down', [1, 1, 0.5, 0.5])],
    );
    for (const target of [11, 13, 21]) await expectSameOutputs(dir, 'resize', model(g, 10), target, [input('x', [1, 2, 6, 8])]);
  });
});

describe('adapters: meaning changes', () => {
  it('Softmax, LogSoftmax, Hardmax 1→13: the old 2-D coercion kept (axis not last), or the axis made explicit (last)', async () => {
    const g = graph(
      [
        node('Softmax', ['x'], ['a']),
        node('LogSoftmax', ['x'], ['b'], [int('axis', 2)]),
        node('Hardmax', ['x'], ['c'], [int('axis', 1)]),
        node('Softmax', ['x'], ['d'], [int('axis', 0)]),
        node('Softmax', ['r'], ['e']),
      ],
      [vi('x', [2, 3, 4]), vi('r')],
      ['a', 'b', 'c', 'd', 'e'].map((n) => vi(n)),
    );
    for (const target of [13, 21]) {
      const { summary } = await expectSameOutputs(dir, 'softmax', model(g, 11), target, [input('x', [2, 3, 4]), input('r', [3, 2, 2], 7)]);
      const text = lines(summary).join('\n');
      expect(text).toMatch(/Softmax 11→13: old 2-D coercion kept with Flatten\+Reshape ×3/);
      expect(text).toMatch(/LogSoftmax 11→13: axis is the last: made explicit ×1/);
    }
  });

  it('BatchNormalization 7→9 (spatial dropped), 14 and 15', async () => {
    const c = 3;
    const init = ['scale', 'bias', 'mean', 'var'].map((n, k) =>
      tensor(
        n,
        [c],
        [1.5, -0.5, 2].map((v) => (k === 3 ? Math.abs(v) + 0.1 : v + k)),
      ),
    );
    const g = graph(
      [node('BatchNormalization', ['x', 'scale', 'bias', 'mean', 'var'], ['y'], [float('epsilon', 1e-3), int('spatial', 1)])],
      [vi('x', [2, c, 4, 4])],
      [vi('y')],
      init,
    );
    for (const target of [9, 14, 15, 21])
      await expectSameOutputs(dir, 'batchnorm', model(g, 7, { ir_version: 3 }), target, [input('x', [2, c, 4, 4])]);
  });

  it('Scatter 9→11 becomes ScatterElements', async () => {
    const g = graph(
      [node('Scatter', ['x', 'idx', 'upd'], ['y'], [int('axis', 1)])],
      [vi('x', [2, 3])],
      [vi('y')],
      [tensor('idx', [2, 2], [0, 2, 1, 0], INT64), tensor('upd', [2, 2], [5, 6, 7, 8])],
    );
    const { proto } = await expectSameOutputs(dir, 'scatter', model(g, 9), 13, [input('x', [2, 3])]);
    expect(opsOf(proto)).toContain('ScatterElements');
  });

  it('Gemm 7→13 and Cast 6→13: new versions with the same meaning, nothing added', async () => {
    const g = graph(
      [node('Gemm', ['x', 'w', 'c'], ['g'], [float('alpha', 0.5), int('transB', 1)]), node('Cast', ['g'], ['y'], [int('to', 11)])],
      [vi('x', [2, 3])],
      [vi('y', undefined, 11)],
      [tensor('w', [4, 3], [...values12()]), tensor('c', [4], [1, 2, 3, 4])],
    );
    const { summary } = await expectSameOutputs(dir, 'gemm', model(g, 8, { ir_version: 3 }), 13, [input('x', [2, 3])]);
    expect(summary.converted).toEqual([]);
    expect(summary.added).toBe(0);
    expect(summary.unchanged.map((e) => `${e.op} ${e.from}→${e.to}`)).toEqual(['Cast 6→13', 'Gemm 7→13']);
  });
});

function values12(): number[] {
  return Array.from({ length: 12 }, (_, i) => (i - 6) / 4);
}

describe('subgraphs and functions', () => {
  it('converts If branches and a model-local function body', async () => {
    const branch = (min: number) =>
      graph(
        [
          node('Clip', ['x'], [`o${min}`], [float('min', min), float('max', 1)]),
          node('Unsqueeze', [`o${min}`], [`u${min}`], [ints('axes', [0])]),
        ],
        [],
        [vi(`u${min}`)],
      );
    const fn = {
      name: 'squash',
      domain: 'local',
      input: ['a'],
      output: ['b'],
      attribute: [],
      attribute_proto: [],
      value_info: [],
      metadata_props: [],
      node: [node('ReduceSum', ['a'], ['s'], [ints('axes', [1])]), node('Squeeze', ['s'], ['b'], [ints('axes', [1])])],
      opset_import: [{ domain: '', version: 9 }],
    };
    const g = graph(
      [
        node('If', ['cond'], ['y'], [graphAttr('then_branch', branch(0)), graphAttr('else_branch', branch(-1))]),
        node('squash', ['x'], ['z'], [], 'local'),
      ],
      [vi('cond', [], BOOL), vi('x', [2, 3])],
      [vi('y'), vi('z')],
    );
    const proto = model(g, 9, {
      ir_version: 8,
      opset_import: [
        { domain: '', version: 9 },
        { domain: 'local', version: 1 },
      ],
      functions: [fn],
    });
    for (const cond of [0, 1]) {
      const feeds = [{ name: 'cond', dtype: BOOL, dims: [], data: Uint8Array.of(cond) }, input('x', [2, 3])];
      const { summary, proto: out } = await expectSameOutputs(dir, `if-${cond}`, proto, 13, feeds);
      expect(summary.subgraphs).toBe(2);
      expect(summary.functions).toBe(1);
      expect(Number(out.functions[0]!.opset_import[0]!.version)).toBe(13);
      expect(lines(summary).join('\n')).toMatch(/ReduceSum 1→13: axes attribute to input ×1/);
      expect(lines(summary).join('\n')).toMatch(/Clip 6→13: min\/max attributes to inputs ×2/);
    }
  });
});

describe('adapters: later opsets', () => {
  it('RoiAlign 10→16: the old output_half_pixel coordinates made explicit', async () => {
    const g = graph(
      [
        node(
          'RoiAlign',
          ['x', 'rois', 'idx'],
          ['y'],
          [int('output_height', 2), int('output_width', 3), int('sampling_ratio', 2), float('spatial_scale', 0.5)],
        ),
      ],
      [vi('x', [1, 2, 8, 8])],
      [vi('y')],
      [tensor('rois', [2, 4], [1, 2, 9, 11, 0, 0, 15, 15]), tensor('idx', [2], [0, 0], INT64)],
    );
    await expectSameOutputs(dir, 'roialign', model(g, 10), 16, [input('x', [1, 2, 8, 8])]);
  });

  it('GridSample 16→20: bilinear and bicubic renamed linear and cubic', async () => {
    const g = graph(
      [
        node('GridSample', ['x', 'grid'], ['a']),
        node('GridSample', ['x', 'grid'], ['b'], [str('mode', 'bicubic'), int('align_corners', 1)]),
        node('GridSample', ['x', 'grid'], ['c'], [str('mode', 'nearest'), str('padding_mode', 'border')]),
      ],
      [vi('x', [1, 2, 4, 5]), vi('grid', [1, 3, 3, 2])],
      ['a', 'b', 'c'].map((n) => vi(n)),
    );
    const grid = input('grid', [1, 3, 3, 2], 5);
    (grid.data as Float32Array).forEach((v, i, a) => {
      a[i] = v / 2.2;
    });
    await expectSameOutputs(dir, 'gridsample', model(g, 16, { ir_version: 8 }), 20, [input('x', [1, 2, 4, 5]), grid]);
  });

  it('DFT 17→20: axis to an input', async () => {
    const g = graph(
      [node('DFT', ['x'], ['y'], [int('axis', 1)]), node('DFT', ['x'], ['z'], [int('axis', 2), int('onesided', 0)])],
      [vi('x', [2, 4, 6, 1])],
      [vi('y'), vi('z')],
    );
    await expectSameOutputs(dir, 'dft', model(g, 17, { ir_version: 8 }), 20, [input('x', [2, 4, 6, 1])]);
  });
});

describe('adapters: opset 6 → 7 (ONNX Runtime has no opset-6 Add or PRelu: the oracle is computed here)', () => {
  it('legacy broadcast with axis: B unsqueezed to align; without axis: numpy suffix broadcast', async () => {
    const { expectConvertedOutputs } = await import('./helpers.js');
    const g = graph(
      [node('Add', ['x', 'b'], ['a'], [int('broadcast', 1), int('axis', 1)]), node('Mul', ['a', 'c'], ['y'], [int('broadcast', 1)])],
      [vi('x', [2, 3, 4])],
      [vi('y')],
      [tensor('b', [3], [1, 2, 3]), tensor('c', [4], [0.5, -1, 2, 0])],
    );
    const x = input('x', [2, 3, 4]);
    const xs = x.data as Float32Array;
    const want = Float32Array.from(xs, (v, i) => (v + [1, 2, 3][Math.floor(i / 4) % 3]!) * [0.5, -1, 2, 0][i % 4]!);
    for (const target of [7, 13, 21]) {
      const summary = await expectConvertedOutputs(dir, 'broadcast6', model(g, 6, { ir_version: 3 }), target, [x], [want]);
      expect(lines(summary).join('\n')).toMatch(/Add 6→\d+: legacy broadcast with axis: B unsqueezed to align/);
    }
  });

  it('PRelu: a per-channel slope broadcast from the channel axis', async () => {
    const { expectConvertedOutputs } = await import('./helpers.js');
    const g = graph([node('PRelu', ['x', 's'], ['y'])], [vi('x', [2, 3, 2])], [vi('y')], [tensor('s', [3], [0.1, 0.5, 2])]);
    const x = input('x', [2, 3, 2]);
    const want = Float32Array.from(x.data as Float32Array, (v, i) => (v >= 0 ? v : v * [0.1, 0.5, 2][Math.floor(i / 2) % 3]!));
    for (const target of [7, 13]) await expectConvertedOutputs(dir, 'prelu6', model(g, 6, { ir_version: 3 }), target, [x], [want]);
  });
});

describe('adapters: GroupNormalization', () => {
  it('GroupNormalization 18→21: per-group scale and bias repeated per channel', async () => {
    const g = graph(
      [node('GroupNormalization', ['x', 's', 'b'], ['y'], [int('num_groups', 3), float('epsilon', 1e-4)])],
      [vi('x', [2, 6, 5])],
      [vi('y')],
      [tensor('s', [3], [0.5, 2, -1]), tensor('b', [3], [0.1, -0.2, 0.3])],
    );
    const { summary } = await expectSameOutputs(dir, 'groupnorm', model(g, 18, { ir_version: 8 }), 21, [input('x', [2, 6, 5])]);
    expect(lines(summary)).toEqual(['GroupNormalization 18→21: per-group scale and bias repeated per channel ×1']);
  });
});
