// Closed-form checks of the quantization rules (issue 20 item 7): small hand-made weights, each
// rule computed here from its definition — never by calling the code under test — and compared
// exactly with the initializers the pass writes.
//
// The rules (README, Passes; src/kernels/quantize.ts groupParams; ONNX QuantizeLinear):
// - int8 symmetric: scale = max|w| / 127 per output channel (float32), zero point 0 (not stored),
//   code = round(w / scale), ties to even, within [−127, 127] (the most negative code unused).
// - uint8 asymmetric: the range [min(0, min w), max(0, max w)]; scale = (hi − lo) / 255, zero
//   point = round(−lo / scale), code = round(w / scale) + zero point within [0, 255].
// - The output-channel axis: MatMul [K, N] per column, Gemm transB=1 [N, K] per row, Conv axis 0,
//   ConvTranspose [C_in, C_out, kH, kW] axis 1, Gather [V, D] per row.
// - int4 symmetric with search=none (IntRange.fullSymmetric): per block of `block` along K, the
//   extreme value (the larger magnitude, with its sign) maps to code −8: scale = extreme / −8 (it may
//   be negative), code = round(w / scale) within [−8, 7]. MatMulNBits stores code + 8 (its default
//   zero point 8), B as [N, blocks, block/2] bytes, two codes a byte along K, the first in the low
//   nibble; scales as [N · blocks], column-major in blocks.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { readModel } from '../../src/io/read.js';
import { tensorValues } from '../../src/ir/tensor.js';
import type { Model } from '../../src/ir/model.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, int, model, node, save, tensor, vi } from '../convert/helpers.js';
import { scratch } from '../helpers.js';

const dir = scratch();

/** Round half to even, as ONNX QuantizeLinear defines it. */
function roundEven(x: number): number {
  const f = Math.floor(x),
    d = x - f;
  // + 0: no −0 (codes are integers).
  if (d < 0.5) return f + 0;
  if (d > 0.5) return f + 1;
  return (f % 2 === 0 ? f : f + 1) + 0;
}

/** Round, and check that `x` is no tie unless it is an exact one (so that x·(1/s) and x/s cannot round apart). */
function roundChecked(x: number): number {
  const d = Math.abs(x - Math.floor(x) - 0.5);
  expect(d === 0 || d > 1e-4, `test data: ${x} is too near a tie`).toBe(true);
  return roundEven(x);
}

/** The values `w` holds as float32 (what the model file stores). */
const f32 = (v: number[]) => Array.from(Float32Array.from(v));

let count = 0;
async function quantize(proto: Parameters<typeof save>[1], spec: string): Promise<Model> {
  const input = save(join(dir, `in-${++count}.onnx`), proto);
  const output = join(dir, `out-${count}.onnx`);
  await compress(input, output, { steps: [parseStep('quantize', spec)], threads: 1 });
  return readModel(output);
}

const init = (m: Model, name: string) => {
  const t = m.graph.initializer.find((x) => x.name === name);
  if (!t) throw new Error(`no initializer ${name}`);
  return t;
};
const values = (m: Model, name: string) => Array.from(tensorValues(init(m, name)) as ArrayLike<number>);

/** The DequantizeLinear node that recreates `weight`, and its codes, scales, zero points and axis. */
function dequantizeOf(m: Model, weight: string) {
  const dq = m.graph.node.filter((n) => n.op_type === 'DequantizeLinear' && n.output[0] === weight);
  expect(dq).toHaveLength(1);
  const n = dq[0]!;
  const q = init(m, n.input[0]!);
  return {
    codes: values(m, n.input[0]!),
    codeType: q.data_type,
    dims: q.dims.map(Number),
    scaleDims: init(m, n.input[1]!).dims.map(Number),
    scales: values(m, n.input[1]!),
    zeroPoints: n.input[2] ? values(m, n.input[2]) : undefined,
    zeroType: n.input[2] ? init(m, n.input[2]).data_type : undefined,
    axis: n.attribute.find((a) => a.name === 'axis')?.i === undefined ? undefined : Number(n.attribute.find((a) => a.name === 'axis')!.i),
  };
}

/** Closed-form symmetric int8 for one channel's values: the scale, and each value's code. */
function symmetricInt8(channel: number[]): { scale: number; codes: number[] } {
  const absMax = Math.max(...channel.map(Math.abs));
  const scale = Math.fround(absMax / 127);
  return { scale, codes: channel.map((w) => Math.min(127, Math.max(-127, roundChecked(w / scale)))) };
}

/** Closed-form asymmetric uint8 for one channel's values. */
function asymmetricUint8(channel: number[]): { scale: number; zeroPoint: number; codes: number[] } {
  const lo = Math.min(0, ...channel),
    hi = Math.max(0, ...channel);
  // Test data: a range exact in float32, so float32 and float64 arithmetic give the same scale.
  expect(Math.fround(hi - lo)).toBe(hi - lo);
  const scale = Math.fround((hi - lo) / 255);
  const zeroPoint = roundChecked(-lo / scale);
  return { scale, zeroPoint, codes: channel.map((w) => Math.min(255, Math.max(0, roundChecked(w / scale) + zeroPoint))) };
}

// A [K = 6, N = 4] MatMul weight whose columns differ in magnitude by up to 10^5, so any scale shared
// by columns, or taken along rows, gives other numbers. Column 0 has max 127 · 2^-3: its scale is
// 0.125 exactly, and its entries include exact ties (±2.5, 0.5, 3.5 steps), which round to even.
const K = 6,
  N = 4;
const COLUMNS = [
  f32([127 * 0.125, 2.5 * 0.125, -2.5 * 0.125, 0.5 * 0.125, 3.5 * 0.125, -126.75 * 0.125]),
  f32([-1.0, 0.3, -0.77, 0.01, 0.52, 0.123]),
  f32([100, -37.2, 12.9, -99.1, 0.4, 63.3]),
  f32([0.001, -0.0004, 0.00071, -0.00093, 0.0002, 0.00055]),
];
/** Row-major [K, N]. */
const KN = Array.from({ length: K * N }, (_, i) => COLUMNS[i % N]![Math.floor(i / N)]!);
/** Row-major [N, K] (a Gemm's B with transB = 1). */
const NK = COLUMNS.flat();

// Asymmetric data: ranges exact in float32, one column all positive (lo = 0), one all negative (hi = 0).
const ASYM_COLUMNS = [
  f32([-1.5, 2.25, 0.3, -0.7, 1.1, 0.0]),
  f32([0.25, 3.5, 1.7, 0.9, 2.2, 3.1]),
  f32([-0.5, -6, -2.3, -4.4, -1.2, -5.9]),
  f32([-0.0625, 0.0078125, 0.03125, -0.044, 0.002, -0.01]),
];
const ASYM_KN = Array.from({ length: K * N }, (_, i) => ASYM_COLUMNS[i % N]![Math.floor(i / N)]!);

function matmulModel(weights: number[]) {
  return model(graph([node('MatMul', ['x', 'W'], ['y'])], [vi('x', [2, K])], [vi('y', [2, N])], [tensor('W', [K, N], weights)]), 17);
}

function gemmTransBModel(weights: number[]) {
  return model(
    graph([node('Gemm', ['x', 'W'], ['y'], [int('transB', 1)])], [vi('x', [2, K])], [vi('y', [2, N])], [tensor('W', [N, K], weights)]),
    17,
  );
}

describe('int8 symmetric: scale max|w|/127 per output channel, zero point 0, codes round-half-even', () => {
  const expected = COLUMNS.map(symmetricInt8);

  it('closed form of the test data itself (the ties round to even)', () => {
    expect(expected[0]!.scale).toBe(0.125);
    expect(expected[0]!.codes).toEqual([127, 2, -2, 0, 4, -127]);
  });

  it('MatMul [K, N], weight-only: DequantizeLinear int8, axis 1, a scale per column', async () => {
    const m = await quantize(matmulModel(KN), 'int8:mode=weight,min-size=0');
    const dq = dequantizeOf(m, 'W');
    expect(dq.codeType).toBe(3); // INT8
    expect(dq.axis).toBe(1);
    expect(dq.zeroPoints).toBeUndefined();
    expect(dq.scaleDims).toEqual([N]);
    expect(dq.scales).toEqual(expected.map((e) => e.scale));
    expect(dq.dims).toEqual([K, N]);
    expect(dq.codes).toEqual(Array.from({ length: K * N }, (_, i) => expected[i % N]!.codes[Math.floor(i / N)]));
  });

  it('MatMul [K, N], integer form (default): MatMulInteger codes [K, N], a scale per column, no zero point', async () => {
    const m = await quantize(matmulModel(KN), 'int8:min-size=0');
    const mmi = m.graph.node.find((n) => n.op_type === 'MatMulInteger')!;
    expect(mmi.input).toHaveLength(3); // no weight zero point: 0
    expect(init(m, mmi.input[1]!).dims.map(Number)).toEqual([K, N]);
    expect(values(m, mmi.input[1]!)).toEqual(Array.from({ length: K * N }, (_, i) => expected[i % N]!.codes[Math.floor(i / N)]));
    const scale = m.graph.node.find(
      (n) => n.op_type === 'Mul' && n.input[0] === m.graph.node.find((d) => d.op_type === 'DynamicQuantizeLinear')!.output[1],
    )!;
    expect(values(m, scale.input[1]!)).toEqual(expected.map((e) => e.scale));
  });

  it('Gemm transB=1 [N, K]: a scale per row (axis 0), weight-only and integer form', async () => {
    const w = await quantize(gemmTransBModel(NK), 'int8:mode=weight,min-size=0');
    const dq = dequantizeOf(w, 'W');
    expect(dq.axis).toBe(0);
    expect(dq.scales).toEqual(expected.map((e) => e.scale));
    expect(dq.codes).toEqual(expected.flatMap((e) => e.codes));
    // The integer form stores the codes transposed, [K, N], with the same scales per column.
    const d = await quantize(gemmTransBModel(NK), 'int8:min-size=0');
    const mmi = d.graph.node.find((n) => n.op_type === 'MatMulInteger')!;
    expect(init(d, mmi.input[1]!).dims.map(Number)).toEqual([K, N]);
    expect(values(d, mmi.input[1]!)).toEqual(Array.from({ length: K * N }, (_, i) => expected[i % N]!.codes[Math.floor(i / N)]));
  });

  it('Conv [C_out, C_in, kH, kW]: a scale per output channel (axis 0)', async () => {
    // C_out = 4 channels, each 2 × 3 values: channel c is COLUMNS[c] as [C_in = 2, 1, 3].
    const proto = model(
      graph([node('Conv', ['x', 'W'], ['y'])], [vi('x', [1, 2, 4, 5])], [vi('y', [1, 4, 4, 3])], [tensor('W', [4, 2, 1, 3], NK)]),
      17,
    );
    const m = await quantize(proto, 'int8:min-size=0');
    const dq = dequantizeOf(m, 'W');
    expect(dq.axis).toBe(0);
    expect(dq.scaleDims).toEqual([4]);
    expect(dq.scales).toEqual(expected.map((e) => e.scale));
    expect(dq.codes).toEqual(expected.flatMap((e) => e.codes));
  });

  it('per tensor: one scale, max|w| over the whole tensor / 127', async () => {
    const m = await quantize(matmulModel(KN), 'int8:mode=weight,granularity=tensor,min-size=0');
    const dq = dequantizeOf(m, 'W');
    const all = symmetricInt8(KN);
    expect(dq.axis).toBeUndefined();
    expect(dq.scales).toEqual([all.scale]);
    expect(dq.codes).toEqual(all.codes);
  });
});

describe('uint8 asymmetric: scale (hi − lo)/255 over a range including 0, zero point round(−lo/scale)', () => {
  const expected = ASYM_COLUMNS.map(asymmetricUint8);

  it('closed form of the test data itself', () => {
    expect(expected[0]!.scale).toBe(Math.fround(3.75 / 255));
    expect(expected[1]!.zeroPoint).toBe(0); // all positive: lo = 0
    expect(expected[2]!.zeroPoint).toBe(255); // all negative: hi = 0
  });

  it('MatMul weight-only: uint8 codes, a scale and a uint8 zero point per column', async () => {
    const m = await quantize(matmulModel(ASYM_KN), 'int8:mode=weight,symmetric=false,min-size=0');
    const dq = dequantizeOf(m, 'W');
    expect(dq.codeType).toBe(2); // UINT8
    expect(dq.zeroType).toBe(2);
    expect(dq.axis).toBe(1);
    expect(dq.scales).toEqual(expected.map((e) => e.scale));
    expect(dq.zeroPoints).toEqual(expected.map((e) => e.zeroPoint));
    expect(dq.codes).toEqual(Array.from({ length: K * N }, (_, i) => expected[i % N]!.codes[Math.floor(i / N)]));
  });

  it('MatMul integer form: uint8 codes [K, N] and a zero point per column', async () => {
    const m = await quantize(matmulModel(ASYM_KN), 'int8:symmetric=false,min-size=0');
    const mmi = m.graph.node.find((n) => n.op_type === 'MatMulInteger')!;
    expect(init(m, mmi.input[1]!).data_type).toBe(2);
    expect(values(m, mmi.input[1]!)).toEqual(Array.from({ length: K * N }, (_, i) => expected[i % N]!.codes[Math.floor(i / N)]));
    expect(values(m, mmi.input[3]!)).toEqual(expected.map((e) => e.zeroPoint));
  });
});

describe('ConvTranspose: per output channel on axis 1 of [C_in, C_out, kH, kW]', () => {
  // C_in = 3, C_out = 4 (so axis 0 and axis 1 give different counts), kernel 3 × 3; output channel c
  // has magnitude 10^(2 − 2c): 100, 1, 0.01, 0.0001.
  const CIN = 3,
    COUT = 4,
    KH = 3,
    KW = 3;
  const W: number[] = [];
  let s = 12345;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31) * 2 - 1;
  };
  for (let i = 0; i < CIN; i++) for (let c = 0; c < COUT; c++) for (let k = 0; k < KH * KW; k++) W.push(next() * 10 ** (2 - 2 * c));
  // Each channel's largest value 127 · 2^e (its scale 2^e exactly) and exact ties ±2.5 and 0.5 steps,
  // which round to even.
  for (let c = 0; c < COUT; c++) {
    const step = 2 ** Math.ceil(Math.log2(10 ** (2 - 2 * c) / 127));
    W[c * KH * KW] = 127 * step;
    W[(COUT + c) * KH * KW + 1] = 2.5 * step;
    W[(2 * COUT + c) * KH * KW + 2] = -2.5 * step;
    W[(2 * COUT + c) * KH * KW + 3] = 0.5 * step;
  }
  const weights = f32(W);
  const proto = model(
    graph(
      [node('ConvTranspose', ['x', 'W'], ['y'])],
      [vi('x', [1, CIN, 5, 5])],
      [vi('y', [1, COUT, 7, 7])],
      [tensor('W', [CIN, COUT, KH, KW], weights)],
    ),
    17,
  );
  const channel = (c: number) => {
    const out: number[] = [];
    for (let i = 0; i < CIN; i++) for (let k = 0; k < KH * KW; k++) out.push(weights[(i * COUT + c) * KH * KW + k]!);
    return out;
  };

  it('scales: C_out of them, max|w| of each output channel / 127; codes round(w/scale)', async () => {
    const m = await quantize(proto, 'int8:min-size=0');
    const dq = dequantizeOf(m, 'W');
    expect(dq.axis).toBe(1);
    expect(dq.scaleDims).toEqual([COUT]);
    const expected = Array.from({ length: COUT }, (_, c) => symmetricInt8(channel(c)));
    expect(dq.scales).toEqual(expected.map((e) => e.scale));
    expect(expected.map((e) => [e.codes[0], e.codes[KH * KW + 1], e.codes[2 * KH * KW + 2], e.codes[2 * KH * KW + 3]])).toEqual(
      Array(COUT).fill([127, 2, -2, 0]),
    );
    for (let i = 0; i < CIN; i++)
      for (let c = 0; c < COUT; c++)
        for (let k = 0; k < KH * KW; k++) {
          expect(dq.codes[(i * COUT + c) * KH * KW + k]).toBe(expected[c]!.codes[i * KH * KW + k]);
        }
  });

  it("runs in ONNX Runtime with each output channel's cosine near 1", async () => {
    const input = join(dir, 'convt.onnx');
    save(input, proto);
    const output = join(dir, 'convt-q8.onnx');
    await compress(input, output, { steps: [parseStep('quantize', 'int8:min-size=0')], threads: 1 });
    const x = {
      name: 'x',
      dtype: 1,
      dims: [1, CIN, 5, 5],
      data: Float32Array.from({ length: CIN * 25 }, (_, i) => Math.sin(i * 0.7) + 0.1),
    };
    const [a] = await run(await createSession(input), [x]);
    const [b] = await run(await createSession(output), [x]);
    const ya = a!.data as Float32Array,
      yb = b!.data as Float32Array;
    for (let c = 0; c < COUT; c++) {
      let ab = 0,
        aa = 0,
        bb = 0;
      for (let p = c * 49; p < (c + 1) * 49; p++) {
        ab += ya[p]! * yb[p]!;
        aa += ya[p]! ** 2;
        bb += yb[p]! ** 2;
      }
      expect(ab / Math.sqrt(aa * bb), `output channel ${c}`).toBeGreaterThan(0.9999);
    }
  });
});

describe('Gather [V, D]: a scale per row (embedding)', () => {
  it('scales: V of them, max|row| / 127', async () => {
    const proto = model(
      graph([node('Gather', ['E', 'ids'], ['y'])], [vi('ids', [3], 7)], [vi('y', [3, K])], [tensor('E', [N, K], NK)]),
      17,
    );
    const m = await quantize(proto, 'int8:min-size=0');
    const dq = dequantizeOf(m, 'E');
    const expected = COLUMNS.map(symmetricInt8);
    expect(dq.axis).toBe(0);
    expect(dq.scales).toEqual(expected.map((e) => e.scale));
    expect(dq.codes).toEqual(expected.flatMap((e) => e.codes));
  });
});

describe('int4, search=none: closed-form block scales (symmetric extreme/−8, asymmetric (hi − lo)/15), MatMulNBits and INT4/UINT4 packing', () => {
  // [K = 32, N = 19], block 16: two blocks a column (19 columns: the kernels pack 16 at a time, then one by one). Each block's values are a few exact multiples of a
  // power of two, and ties, so every code is exact; the extreme is positive in some blocks, negative
  // in others; column 1's block 0 has ±4 steps: at equal magnitudes the negative one is the extreme
  // (scale > 0), and the positive one clamps to code 7.
  const K4 = 32,
    N4 = 19,
    BLOCK = 16;
  const steps = [
    // column 0: block 0's extreme is +8 steps (a negative scale), block 1's −8 steps
    [
      [8, 1, -2.5, 3.5, 0.5, -7, 6, 0, 2, -1, 1.5, -3, 4, 5, -6, 7],
      [-8, 1, 2.5, -3.5, -0.5, 7, -6, 0, -2, 1, -1.5, 3, -4, -5, 6, 2],
    ],
    [
      [4, -3, 2, -1, 0.5, 1.5, -2.5, 3.5, 0, 0, 1, 2, 3, -4, -2, 1],
      [-6, 3, 2, -1, 0.25, 1.75, 5, -5.5, 4, 0, 1, 2, 3, -4, -2, 1],
    ],
    [
      [1, 2, 3, 4, 5, 6, 7, -7.5, 0, 0, 0, 0, 0, 0, 0, 0],
      [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3, -3, 4, -4, 5, -5, 6, -6, 7, -6.5],
    ],
  ];
  const unit = [0.0625, 2, 0.5];
  /** w[k][n] */
  // Columns 3 on: the first three again, scaled by 2^(n − 2) and negated every other column.
  const column = (n: number) => steps[n % 3]!.flat().map((v) => v * unit[n % 3]! * (n < 3 ? 1 : (n % 2 ? -1 : 1) * 2 ** (n - 2)));
  const KN4 = Array.from({ length: K4 * N4 }, (_, i) => column(i % N4)[Math.floor(i / N4)]!);
  /** Closed form for one block: the extreme (by magnitude, keeping its sign; the negative one at a tie) over −8. */
  const block = (vals: number[]) => {
    const min = Math.min(...vals),
      max = Math.max(...vals);
    const extreme = -min >= max ? min : max;
    const scale = Math.fround(extreme / -8);
    return { scale, codes: vals.map((v) => Math.min(7, Math.max(-8, roundChecked(v / scale)))) };
  };

  it('B, scales: closed form, code + 8 two a byte, low nibble first along K', async () => {
    const proto = model(
      graph([node('MatMul', ['x', 'W'], ['y'])], [vi('x', [2, K4])], [vi('y', [2, N4])], [tensor('W', [K4, N4], KN4)]),
      17,
    );
    const m = await quantize(proto, `int4:block=${BLOCK},search=none,min-size=0`);
    const nb = m.graph.node.find((n) => n.op_type === 'MatMulNBits')!;
    expect(nb.domain).toBe('com.microsoft');
    expect(nb.input).toHaveLength(3); // no zero points: the default 8
    const attr = (name: string) => Number(nb.attribute.find((a) => a.name === name)!.i);
    expect([attr('K'), attr('N'), attr('bits'), attr('block_size')]).toEqual([K4, N4, 4, BLOCK]);
    const blocks = K4 / BLOCK;
    const expected = Array.from({ length: N4 }, (_, n) =>
      Array.from({ length: blocks }, (_, b) => block(column(n).slice(b * BLOCK, (b + 1) * BLOCK))),
    );
    expect(expected[0]![0]!.scale).toBe(-0.0625); // +8 steps of 1/16 is the extreme: scale 0.5/−8
    expect(expected[0]![1]!.scale).toBe(0.0625);
    expect(expected[1]![0]!.scale).toBe(1);
    expect(expected[1]![0]!.codes[0]).toBe(7); // +8 steps, clamped
    expect(init(m, nb.input[2]!).dims.map(Number)).toEqual([N4 * blocks]);
    expect(values(m, nb.input[2]!)).toEqual(expected.flatMap((col) => col.map((e) => e.scale)));
    const bTensor = init(m, nb.input[1]!);
    expect(bTensor.dims.map(Number)).toEqual([N4, blocks, BLOCK / 2]);
    const bytes: number[] = [];
    for (let n = 0; n < N4; n++)
      for (let b = 0; b < blocks; b++)
        for (let j = 0; j < BLOCK / 2; j++) {
          const lo = expected[n]![b]!.codes[2 * j]! + 8,
            hi = expected[n]![b]!.codes[2 * j + 1]! + 8;
          bytes.push(lo | (hi << 4));
        }
    expect(values(m, nb.input[1]!)).toEqual(bytes);
  });

  // A Gemm with transB = 1 reads [N, K]: blocks run along axis 1 (K), and the weight becomes opset-21
  // DequantizeLinear on INT4 (or UINT4 with zero points), two codes a byte in the tensor's row-major
  // order, the first in the low nibble; scales [N, blocks].
  const gemm = () =>
    model(
      graph(
        [node('Gemm', ['x', 'W'], ['y'], [int('transB', 1)])],
        [vi('x', [2, K4])],
        [vi('y', [2, N4])],
        [tensor('W', [N4, K4], Array.from({ length: N4 }, (_, n) => column(n)).flat())],
      ),
      17,
    );
  const pairs = (codes: number[]) =>
    Array.from({ length: codes.length / 2 }, (_, j) => (codes[2 * j]! & 15) | ((codes[2 * j + 1]! & 15) << 4));
  const raw = (m: Model, name: string) => Array.from(init(m, name).raw_data!);

  it('Gemm transB=1, symmetric: INT4 DequantizeLinear, blocks along axis 1, the same closed form', async () => {
    const m = await quantize(gemm(), `int4:block=${BLOCK},search=none,min-size=0`);
    const n = m.graph.node.find((x) => x.op_type === 'DequantizeLinear' && x.output[0] === 'W')!;
    const attr = (name: string) => Number(n.attribute.find((a) => a.name === name)!.i);
    expect([attr('axis'), attr('block_size')]).toEqual([1, BLOCK]);
    expect(n.input).toHaveLength(2);
    expect(init(m, n.input[0]!).data_type).toBe(22); // INT4
    const blocks = K4 / BLOCK;
    const expected = Array.from({ length: N4 }, (_, r) =>
      Array.from({ length: blocks }, (_, b) => block(column(r).slice(b * BLOCK, (b + 1) * BLOCK))),
    );
    expect(init(m, n.input[1]!).dims.map(Number)).toEqual([N4, blocks]);
    expect(values(m, n.input[1]!)).toEqual(expected.flatMap((row) => row.map((e) => e.scale)));
    expect(raw(m, n.input[0]!)).toEqual(pairs(expected.flatMap((row) => row.flatMap((e) => e.codes))));
  });

  it('Gemm transB=1, asymmetric: UINT4, scale (hi − lo)/15 over a range including 0, zero point round(−lo/scale)', async () => {
    // Blocks of three kinds (both signs, all positive, all negative) whose range (with 0) is 15 · 2^e:
    // the scale is 2^e exactly and the zero point an integer, and seeded values in between.
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const rows = Array.from({ length: N4 }, (_, r) =>
      Array.from({ length: K4 / BLOCK }, (_, b) => {
        const kind = (r + b) % 3,
          step = 2 ** ((r % 4) - 5),
          j = 1 + (r % 14);
        const [lo, hi] = kind === 0 ? [-j * step, (15 - j) * step] : kind === 1 ? [0, 15 * step] : [-15 * step, 0];
        const ends = kind === 0 ? [lo, hi] : kind === 1 ? [hi, 0.5 * step] : [lo, -0.5 * step];
        return [...ends, ...Array.from({ length: BLOCK - 2 }, () => Math.fround(lo + (hi - lo) * next()))];
      }).flat(),
    );
    const proto = model(
      graph(
        [node('Gemm', ['x', 'W'], ['y'], [int('transB', 1)])],
        [vi('x', [2, K4])],
        [vi('y', [2, N4])],
        [tensor('W', [N4, K4], rows.flat())],
      ),
      17,
    );
    const m = await quantize(proto, `int4:block=${BLOCK},search=none,symmetric=false,min-size=0`);
    const n = m.graph.node.find((x) => x.op_type === 'DequantizeLinear' && x.output[0] === 'W')!;
    expect(init(m, n.input[0]!).data_type).toBe(21); // UINT4
    const asym = (vals: number[]) => {
      const lo = Math.min(0, ...vals),
        hi = Math.max(0, ...vals);
      expect(Math.fround(hi - lo)).toBe(hi - lo);
      const scale = Math.fround((hi - lo) / 15);
      const zeroPoint = roundChecked(-lo / scale);
      return { scale, zeroPoint, codes: vals.map((v) => Math.min(15, Math.max(0, roundChecked(v / scale) + zeroPoint))) };
    };
    const expected = rows.map((row) => Array.from({ length: K4 / BLOCK }, (_, b) => asym(row.slice(b * BLOCK, (b + 1) * BLOCK))));
    expect(expected.flat().some((e) => e.zeroPoint === 0) && expected.flat().some((e) => e.zeroPoint === 15)).toBe(true);
    expect(values(m, n.input[1]!)).toEqual(expected.flatMap((row) => row.map((e) => e.scale)));
    expect(raw(m, n.input[2]!)).toEqual(pairs(expected.flatMap((row) => row.map((e) => e.zeroPoint))));
    expect(raw(m, n.input[0]!)).toEqual(pairs(expected.flatMap((row) => row.flatMap((e) => e.codes))));
  });
});
