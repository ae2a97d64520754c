// int8 on float16 and bfloat16 weights (issue 16 item 2): weight-only int8 codes with float32 scales
// per output channel, computed from the weight's values converted exactly to float32, then
// DequantizeLinear and a Cast back to the weight's own dtype, so that the consumer keeps its types.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import type { NamedArray } from '../../src/io/testdata.js';
import type { GraphProto, ModelProto, TensorProto } from '../../src/ir/onnx.js';
import { tensorValues } from '../../src/ir/tensor.js';
import { validateModel } from '../../src/ir/validate.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, int, model, node, save, values, vi } from '../convert/helpers.js';
import { cli, cosine, scratch } from '../helpers.js';

const dir = scratch();
const FLOAT16 = 10,
  BFLOAT16 = 16,
  FLOAT = 1;

/** float16 bits of x, which must be a normal float16 value or 0 (the test data is made so). */
function halfBits(x: number): number {
  if (x === 0) return 0;
  const sign = x < 0 ? 0x8000 : 0,
    a = Math.abs(x);
  const e = Math.floor(Math.log2(a));
  const frac = (a / 2 ** e - 1) * 1024;
  expect(Number.isInteger(frac) && e >= -14 && e <= 15, `${x} is no normal float16`).toBe(true);
  return sign | ((e + 15) << 10) | frac;
}
function halfValue(h: number): number {
  const e = (h >> 10) & 0x1f,
    f = h & 0x3ff,
    s = h & 0x8000 ? -1 : 1;
  return e === 0 ? s * f * 2 ** -24 : s * (1 + f / 1024) * 2 ** (e - 15);
}
/** n float16 values in [-2, 2): multiples of 2^-10, exact in float16. */
function halves(n: number, seed: number, scale = 1): Uint16Array {
  return Uint16Array.from(values(n, seed), (v) => halfBits((Math.round(v * 1024) / 1024) * scale));
}
const bfloatValue = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;

function halfTensor(name: string, dims: number[], bits: Uint16Array, dataType = FLOAT16): TensorProto {
  return {
    name,
    dims,
    data_type: dataType,
    raw_data: new Uint8Array(bits.buffer),
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

/** x [B, 128] → MatMul W1 [128, 128] + b1, Relu → MatMul W2 [128, 64] + b2, all float16. */
function mlp(): ModelProto {
  const g = graph(
    [
      node('MatMul', ['x', 'W1'], ['h1']),
      node('Add', ['h1', 'b1'], ['a1']),
      node('Relu', ['a1'], ['r1']),
      node('MatMul', ['r1', 'W2'], ['h2']),
      node('Add', ['h2', 'b2'], ['y']),
    ],
    [vi('x', ['B', 128], FLOAT16)],
    [vi('y', ['B', 64], FLOAT16)],
    [
      halfTensor('W1', [128, 128], halves(128 * 128, 3, 0.125)),
      halfTensor('b1', [128], halves(128, 4, 0.125)),
      halfTensor('W2', [128, 64], halves(128 * 64, 5, 0.125)),
      halfTensor('b2', [64], halves(64, 6, 0.125)),
    ],
  );
  return model(g, 17);
}

/** x [1, 16, 12, 12] → Conv W [32, 16, 3, 3] + B, pads 1, Relu; float16. */
function conv(): ModelProto {
  const g = graph(
    [node('Conv', ['x', 'W', 'B'], ['c'], [{ ...int('group', 1) }]), node('Relu', ['c'], ['y'])],
    [vi('x', [1, 16, 12, 12], FLOAT16)],
    [vi('y', [1, 32, 10, 10], FLOAT16)],
    [halfTensor('W', [32, 16, 3, 3], halves(32 * 16 * 9, 7, 0.25)), halfTensor('B', [32], halves(32, 8, 0.125))],
  );
  return model(g, 17);
}

interface Json {
  passes: { tensorsChanged: number; bytesBefore: number; bytesAfter: number }[];
  tensors: { name: string; dtypeBefore?: string; dtypeAfter?: string }[];
}

function quantize(label: string, proto: ModelProto): { original: string; output: string; json: Json } {
  const original = save(join(dir, `${label}.onnx`), proto);
  const output = join(dir, `${label}-int8.onnx`);
  const r = cli(['compress', original, '-o', output, '--quantize', 'int8', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return { original, output, json: JSON.parse(r.stdout) as Json };
}

const halfInput = (name: string, dims: number[], seed: number): NamedArray => ({
  name,
  dtype: FLOAT16,
  dims,
  data: halves(
    dims.reduce((a, b) => a * b, 1),
    seed,
  ),
});

async function outputs(path: string, inputs: NamedArray[]): Promise<Float32Array> {
  const [y] = await run(await createSession(path), inputs);
  expect(y!.dtype).toBe(FLOAT16);
  return Float32Array.from(y!.data as Uint16Array, halfValue);
}

/**
 * The nodes that recreate `name` — the form: Cast to the weight's dtype ← DequantizeLinear per
 * channel on `axis` ← int8 codes (the weight's shape) and float32 scales; no zero point (symmetric).
 */
function recreated(g: GraphProto, name: string, axis: number, dims: number[], to = FLOAT16) {
  const cast = g.node.find((n) => n.output.includes(name))!;
  expect(cast.op_type).toBe('Cast');
  const dq = g.node.find((n) => n.output.includes(cast.input[0]!))!;
  expect(dq.op_type).toBe('DequantizeLinear');
  const init = (n: string) => g.initializer.find((t) => t.name === n)!;
  const codes = init(dq.input[0]!),
    scale = init(dq.input[1]!);
  expect(cast.attribute.find((a) => a.name === 'to')?.i).toBe(to);
  expect(dq.input).toHaveLength(2);
  expect(dq.attribute.find((a) => a.name === 'axis')?.i).toBe(axis);
  expect(codes.data_type).toBe(3);
  expect(codes.dims.map(Number)).toEqual(dims);
  expect(scale.data_type).toBe(FLOAT);
  expect(scale.dims.map(Number)).toEqual([dims[axis]]);
  return { cast, dq, codes, scale };
}

/** float16 bits of a float32 value, rounded to nearest even (an independent oracle: via the exact binary expansion). */
function halfBits16(v: number): number {
  const a = Math.abs(v);
  if (a === 0) return 0;
  const e = Math.max(-14, Math.floor(Math.log2(a)));
  const step = 2 ** (e - 10);
  let q = a / step;
  const floor = Math.floor(q);
  q = q - floor > 0.5 || (q - floor === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  const value = q * step;
  const ee = Math.floor(Math.log2(value));
  if (ee < -14) return Math.round(value / 2 ** -24);
  return ((ee + 15) << 10) | Math.round((value / 2 ** ee - 1) * 1024);
}

/** max|w| / 127 per output channel of w [..] on `axis`, from the float16 values, as float32. */
function closedFormScales(w: Float64Array | number[], dims: number[], axis: number): number[] {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1),
    n = dims[axis]!,
    inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let c = 0; c < n; c++) {
    let m = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(w[(o * n + c) * inner + i]!));
    out.push(Math.fround(Math.fround(m) / 127));
  }
  return out;
}

describe('int8 on float16 and bfloat16 weights', () => {
  it('opset 19: DequantizeLinear with float16 scales makes the float16 weight itself (no Cast); scales are the closed form in float16', async () => {
    const proto = { ...mlp(), opset_import: [{ domain: '', version: 19 }] };
    const { original, output } = quantize('mlp19', proto);
    const m = readModel(output);
    expect(m.graph.node.some((n) => n.op_type === 'Cast')).toBe(false);
    for (const [name, cols] of [
      ['W1', 128],
      ['W2', 64],
    ] as const) {
      const dq = m.graph.node.find((n) => n.output[0] === name)!;
      expect(dq.op_type).toBe('DequantizeLinear');
      const scale = m.graph.initializer.find((t) => t.name === dq.input[1])!;
      expect(scale.data_type).toBe(FLOAT16);
      const w = Array.from(tensorValues(proto.graph!.initializer.find((t) => t.name === name)!) as Uint16Array, halfValue);
      const want = closedFormScales(w, [128, cols], 1).map((v) => halfBits16(v));
      expect(Array.from(tensorValues(scale) as Uint16Array)).toEqual(want);
    }
    const x = [halfInput('x', [4, 128], 12)];
    expect(cosine(await outputs(original, x), await outputs(output, x))).toBeGreaterThanOrEqual(0.999);
  });

  it('an fp16 MLP: W1 and W2 weight-only int8 (float32 scales, Cast to float16), ≤ 0.55× the weight bytes, cosine ≥ 0.999', async () => {
    const proto = mlp();
    const { original, output, json } = quantize('mlp', proto);
    expect(json.passes[0]!.tensorsChanged).toBe(2);
    const changed = json.tensors.filter((t) => t.dtypeAfter === 'int8');
    expect(changed.map((t) => t.name).sort()).toEqual(['W1', 'W2']);
    for (const t of changed) {
      expect(t.dtypeBefore).toBe('float16');
    }
    const weightBytes = 2 * (128 * 128 + 128 + 128 * 64 + 64);
    expect(json.passes[0]!.bytesAfter).toBeLessThanOrEqual(0.55 * json.passes[0]!.bytesBefore);
    expect(statSync(output).size).toBeLessThanOrEqual(0.55 * weightBytes + 1024);
    const m = readModel(output);
    expect(m.graph.node.some((n) => n.op_type === 'MatMulInteger')).toBe(false);
    for (const [name, dims] of [
      ['W1', [128, 128]],
      ['W2', [128, 64]],
    ] as const) {
      const { scale } = recreated(m.graph, name, 1, [...dims]);
      const w = Array.from(tensorValues(proto.graph!.initializer.find((t) => t.name === name)!) as Uint16Array, halfValue);
      expect(Array.from(tensorValues(scale) as Float32Array)).toEqual(closedFormScales(w, [...dims], 1));
    }
    const x = [halfInput('x', [4, 128], 11)];
    const [want, got] = [await outputs(original, x), await outputs(output, x)];
    expect(cosine(want, got)).toBeGreaterThanOrEqual(0.999);
  });

  it('an fp16 Conv: W weight-only int8 per output channel (axis 0), ≤ 0.55× the weight bytes, cosine ≥ 0.999', async () => {
    const proto = conv();
    const { original, output, json } = quantize('conv', proto);
    expect(json.passes[0]!.tensorsChanged).toBe(1);
    const t = json.tensors.find((x) => x.name === 'W')!;
    expect(t.dtypeBefore).toBe('float16');
    expect(t.dtypeAfter).toBe('int8');
    expect(json.passes[0]!.bytesAfter).toBeLessThanOrEqual(0.55 * json.passes[0]!.bytesBefore);
    expect(statSync(output).size).toBeLessThanOrEqual(0.55 * 2 * (32 * 16 * 9 + 32) + 1024);
    const m = readModel(output);
    const { scale } = recreated(m.graph, 'W', 0, [32, 16, 3, 3]);
    const w = Array.from(tensorValues(proto.graph!.initializer.find((x) => x.name === 'W')!) as Uint16Array, halfValue);
    expect(Array.from(tensorValues(scale) as Float32Array)).toEqual(closedFormScales(w, [32, 16, 3, 3], 0));
    const x = [halfInput('x', [1, 16, 12, 12], 12)];
    const [want, got] = [await outputs(original, x), await outputs(output, x)];
    expect(cosine(want, got)).toBeGreaterThanOrEqual(0.999);
  });

  it('a bfloat16 MatMul weight: int8 with a Cast to bfloat16; the model is written and valid, its dequantizing part runs (ORT CPU has no bfloat16 MatMul)', async () => {
    // float32 x → Cast to bfloat16 → MatMul W [128, 64] bfloat16 → Cast to float32.
    const bits = Uint16Array.from(values(128 * 64, 21), (v) => new Uint32Array(new Float32Array([v * 0.125]).buffer)[0]! >>> 16);
    const g = graph(
      [
        node('Cast', ['x'], ['xb'], [int('to', BFLOAT16)]),
        node('MatMul', ['xb', 'W'], ['yb']),
        node('Cast', ['yb'], ['y'], [int('to', FLOAT)]),
      ],
      [vi('x', ['B', 128])],
      [vi('y', ['B', 64])],
      [halfTensor('W', [128, 64], bits, BFLOAT16)],
    );
    const { original, output, json } = quantize('bf16', model(g, 17));
    expect(json.passes[0]!.tensorsChanged).toBe(1);
    expect(json.tensors.find((t) => t.name === 'W')).toMatchObject({ dtypeBefore: 'bfloat16', dtypeAfter: 'int8' });
    const m = readModel(output);
    const { scale } = recreated(m.graph, 'W', 1, [128, 64], BFLOAT16);
    expect(Array.from(tensorValues(scale) as Float32Array)).toEqual(closedFormScales(Array.from(bits, bfloatValue), [128, 64], 1));
    expect(m.graph.node.find((n) => n.op_type === 'MatMul')!.input).toEqual(['xb', 'W']);
    expect(validateModel(m.proto)).toEqual([]);
    // ONNX Runtime's CPU provider has no bfloat16 MatMul: neither model runs whole (the original neither).
    for (const f of [original, output]) await expect(createSession(f)).rejects.toThrow(/MatMul/);
    // The dequantizing part runs: W recreated as bfloat16, read out through a Cast to float32, is
    // within half a step (scale / 2, and bfloat16's own rounding of the result) of the original.
    const probe = {
      ...m.proto,
      graph: {
        ...m.proto.graph!,
        node: [
          ...m.graph.node.filter((n) => n.op_type !== 'MatMul' && n.input[0] !== 'x' && n.output[0] !== 'y'),
          node('Cast', ['W'], ['w32'], [int('to', FLOAT)]),
        ],
        input: [],
        output: [vi('w32', [128, 64])],
      },
    };
    const [w32] = await run(await createSession(save(join(dir, 'bf16-probe.onnx'), probe)), []);
    const scales = tensorValues(scale) as Float32Array,
      want = Array.from(bits, bfloatValue);
    for (let i = 0; i < want.length; i++)
      expect(Math.abs((w32!.data as Float32Array)[i]! - want[i]!)).toBeLessThanOrEqual(
        scales[i % 64]! / 2 + Math.abs(want[i]!) / 128 + 1e-7,
      );
  });
});
