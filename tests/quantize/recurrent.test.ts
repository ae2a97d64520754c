// int8 on recurrent weights (issue 16 item 1) and on a MatMul whose constant is its first input.
// LSTM/GRU/RNN W [D, G·H, I] and R [D, G·H, H] become weight-only DequantizeLinear with a scale per
// direction and output row (axis 1): per-axis on axis 1 when D = 1; when D = 2, codes stored as
// [D·G·H, ·] with per-axis scales on axis 0, then a Reshape back (src/quantize/int8.ts
// recurrentRows). B stays float. The models are built here, quantized through the CLI, and run in
// ONNX Runtime against the originals; one weight's scales are checked in closed form (max|row|/127).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import type { GraphProto, ModelProto } from '../../src/ir/onnx.js';
import { tensorValues } from '../../src/ir/tensor.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, input, model, node, save, str, int, tensor, values, vi } from '../convert/helpers.js';
import { cli, cosine, scratch } from '../helpers.js';
import { rowScales } from './helpers.js';

const dir = scratch();
const SEQ = 8,
  BATCH = 2,
  IN = 40;

interface Spec {
  op: 'LSTM' | 'GRU' | 'RNN';
  gates: number;
  hidden: number;
  directions: 1 | 2;
}

/** Weights like PyTorch's init, U(−1/√H, 1/√H); the reverse direction's W three times larger (its own range). */
function recurrentModel({ op, gates, hidden, directions }: Spec, seed: number): ModelProto {
  const k = 1 / Math.sqrt(hidden),
    rows = gates * hidden;
  const scaled = (n: number, s: number, perDirection: boolean) => {
    const v = values(n, s);
    return Array.from(v, (x, i) => x * 0.5 * k * (perDirection && i >= n / directions ? 3 : 1));
  };
  const W = tensor('W', [directions, rows, IN], scaled(directions * rows * IN, seed, true));
  const R = tensor('R', [directions, rows, hidden], scaled(directions * rows * hidden, seed + 1, false));
  const B = tensor('B', [directions, 2 * rows], scaled(directions * 2 * rows, seed + 2, false));
  const attrs = [int('hidden_size', hidden), ...(directions === 2 ? [str('direction', 'bidirectional')] : [])];
  const outputs = op === 'LSTM' ? ['Y', 'Y_h', 'Y_c'] : ['Y', 'Y_h'];
  const g: GraphProto = graph(
    [node(op, ['X', 'W', 'R', 'B'], outputs, attrs)],
    [vi('X', [SEQ, BATCH, IN])],
    [vi('Y', [SEQ, directions, BATCH, hidden]), vi('Y_h', [directions, BATCH, hidden])],
    [W, R, B],
  );
  return model(g, 14);
}

const weightBytes = (path: string) => readModel(path).graph.initializer.reduce((n, t) => n + (t.raw_data?.byteLength ?? 0), 0);

interface Result {
  original: string;
  output: string;
  json: { passes: { tensorsChanged: number; skipped: { name: string }[] }[]; tensors: { name: string; dtypeAfter?: string }[] };
}

function quantize(label: string, proto: ModelProto, args: string[] = [], spec = 'int8:mode=weight'): Result {
  const original = save(join(dir, `${label}.onnx`), proto);
  const output = join(dir, `${label}-int8.onnx`);
  const r = cli(['compress', original, '-o', output, '--quantize', spec, ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return { original, output, json: JSON.parse(r.stdout) };
}

/** The DequantizeLinear that recreates `name` (directly, or through a Reshape). */
function dequantizerOf(g: GraphProto, name: string) {
  let producer = g.node.find((n) => n.output.includes(name));
  if (producer?.op_type === 'Reshape') producer = g.node.find((n) => n.output.includes(producer!.input[0]!));
  return producer?.op_type === 'DequantizeLinear' ? producer : undefined;
}

const specs: Spec[] = [
  { op: 'LSTM', gates: 4, hidden: 48, directions: 1 },
  { op: 'LSTM', gates: 4, hidden: 48, directions: 2 },
  { op: 'GRU', gates: 3, hidden: 32, directions: 1 },
  { op: 'RNN', gates: 1, hidden: 64, directions: 1 },
];

describe('int8 on LSTM, GRU and RNN weights', () => {
  for (const [i, spec] of specs.entries()) {
    const label = `${spec.op}-${spec.directions === 2 ? 'bidirectional' : 'forward'}`;
    it(`${label}: W and R weight-only int8 per row, B float, ≤ 0.35× the weight bytes, Y and Y_h cosine ≥ 0.999`, async () => {
      const proto = recurrentModel(spec, 10 * (i + 1));
      const { original, output, json } = quantize(label, proto);
      expect(json.passes[0]!.tensorsChanged).toBe(2);
      expect(
        json.tensors
          .filter((t) => t.dtypeAfter === 'int8')
          .map((t) => t.name)
          .sort(),
      ).toEqual(['R', 'W']);
      const m = readModel(output);
      const rec = m.graph.node.find((n) => n.op_type === spec.op)!;
      for (const name of ['W', 'R']) {
        expect(rec.input).toContain(name);
        const dq = dequantizerOf(m.graph, name);
        expect(dq, `${name} from a DequantizeLinear`).toBeDefined();
        const q = m.graph.initializer.find((t) => t.name === dq!.input[0])!;
        expect(q.data_type).toBe(3); // INT8
        const axis = dq!.attribute.find((a) => a.name === 'axis');
        expect(Number(axis?.i), `${name} axis`).toBe(spec.directions === 2 ? 0 : 1);
      }
      expect(m.graph.initializer.find((t) => t.name === 'B')?.data_type).toBe(1);
      expect(weightBytes(output)).toBeLessThanOrEqual(0.35 * weightBytes(original));

      const x = [input('X', [SEQ, BATCH, IN], 7)];
      const a = await run(await createSession(original), x);
      const b = await run(await createSession(output), x);
      for (const name of ['Y', 'Y_h']) {
        const ya = a.find((o) => o.name === name)!,
          yb = b.find((o) => o.name === name)!;
        expect(yb.dims).toEqual(ya.dims);
        expect(cosine(ya.data as ArrayLike<number>, yb.data as ArrayLike<number>), `${label} ${name}`).toBeGreaterThanOrEqual(0.999);
      }
    });
  }

  it('closed form: a scale per direction and row, max|W[d, r, :]| / 127, codes round(w / scale)', () => {
    const spec = specs[1]!;
    const proto = recurrentModel(spec, 20);
    const { output } = quantize('closed-form', proto);
    const m = readModel(output);
    const D = 2,
      rows = spec.gates * spec.hidden;
    const w = tensorValues(proto.graph!.initializer.find((t) => t.name === 'W')!) as Float32Array;
    const dq = dequantizerOf(m.graph, 'W')!;
    const scaleT = m.graph.initializer.find((t) => t.name === dq.input[1])!;
    const codesT = m.graph.initializer.find((t) => t.name === dq.input[0])!;
    expect(scaleT.dims.map(Number)).toEqual([D * rows]);
    expect(codesT.dims.map(Number)).toEqual([D * rows, IN]);
    const want = rowScales(w, D * rows, IN);
    const got = Array.from(tensorValues(scaleT) as Float32Array);
    expect(got).toEqual(want);
    // The two directions have their own scales (the reverse one ~3× larger), not one shared per row.
    expect(got[rows]! / got[0]!).toBeGreaterThan(1.5);
    const codes = tensorValues(codesT) as Int8Array;
    for (let r = 0; r < D * rows; r++)
      for (let c = 0; c < IN; c++) {
        expect(Math.abs(codes[r * IN + c]! - w[r * IN + c]! / want[r]!)).toBeLessThanOrEqual(0.5 + 1e-4);
      }
    const reshape = m.graph.node.find((n) => n.op_type === 'Reshape' && n.output[0] === 'W')!;
    const shape = m.graph.initializer.find((t) => t.name === reshape.input[1])!;
    expect(Array.from(tensorValues(shape) as BigInt64Array, Number)).toEqual([D, rows, IN]);
  });

  it('closed form, one direction: per-axis on axis 1 of [1, G·H, I], max|W[0, r, :]| / 127', () => {
    const spec = specs[2]!;
    const proto = recurrentModel(spec, 30);
    const { output } = quantize('closed-form-gru', proto);
    const m = readModel(output);
    const rows = spec.gates * spec.hidden;
    const r = tensorValues(proto.graph!.initializer.find((t) => t.name === 'R')!) as Float32Array;
    const dq = dequantizerOf(m.graph, 'R')!;
    expect(dq.output[0]).toBe('R');
    const scaleT = m.graph.initializer.find((t) => t.name === dq.input[1])!;
    expect(Array.from(tensorValues(scaleT) as Float32Array)).toEqual(rowScales(r, rows, spec.hidden));
  });
});

describe('int8 on a MatMul whose constant is input A', () => {
  it('per-channel on axis 0 of A [M, K] (the output rows), weight-only; closed-form scales; cosine ≥ 0.999', async () => {
    const M = 24,
      K = 64,
      N = 8;
    const a = Array.from(values(M * K, 5), (v, i) => v * (1 + Math.floor(i / K) / 4)); // rows of different ranges
    const proto = model(graph([node('MatMul', ['A', 'X'], ['Y'])], [vi('X', [K, N])], [vi('Y', [M, N])], [tensor('A', [M, K], a)]), 14);
    const { original, output, json } = quantize('matmul-a', proto);
    expect(json.passes[0]!.tensorsChanged).toBe(1);
    expect(json.tensors.filter((t) => t.dtypeAfter === 'int8').map((t) => t.name)).toEqual(['A']);
    const m = readModel(output);
    const dq = dequantizerOf(m.graph, 'A')!;
    expect(dq).toBeDefined();
    expect(Number(dq.attribute.find((x) => x.name === 'axis')?.i)).toBe(0);
    const scaleT = m.graph.initializer.find((t) => t.name === dq.input[1])!;
    expect(Array.from(tensorValues(scaleT) as Float32Array)).toEqual(rowScales(Float32Array.from(a), M, K));
    const x = [input('X', [K, N], 3)];
    const ya = (await run(await createSession(original), x))[0]!,
      yb = (await run(await createSession(output), x))[0]!;
    expect(cosine(ya.data as ArrayLike<number>, yb.data as ArrayLike<number>)).toBeGreaterThanOrEqual(0.999);
  });
});

describe('the integer LSTM (int8 default: DynamicQuantizeLSTM where the check passes)', () => {
  for (const spec of specs.filter((s) => s.op === 'LSTM')) {
    const label = `integer-${spec.directions === 2 ? 'bidirectional' : 'forward'}`;
    it(`${label}: W [D, I, 4H] and R [D, H, 4H] int8 transposed per direction, scales per direction and row, Y cosine ≥ 0.999`, async () => {
      const proto = recurrentModel(spec, 50 + spec.directions);
      const { original, output, json } = quantize(label, proto, [], 'int8');
      expect(json.passes[0]!.tensorsChanged).toBe(2);
      const m = readModel(output);
      const lstm = m.graph.node.find((n) => n.op_type === 'DynamicQuantizeLSTM')!;
      expect(lstm.domain).toBe('com.microsoft');
      const D = spec.directions,
        rows = spec.gates * spec.hidden;
      const w = tensorValues(proto.graph!.initializer.find((t) => t.name === 'W')!) as Float32Array;
      const codes = m.graph.initializer.find((t) => t.name === lstm.input[1])!;
      const scales = m.graph.initializer.find((t) => t.name === lstm.input[8])!;
      expect(codes.dims.map(Number)).toEqual([D, IN, rows]);
      expect(scales.dims.map(Number)).toEqual([D, rows]);
      const want = rowScales(w, D * rows, IN);
      expect(Array.from(tensorValues(scales) as Float32Array)).toEqual(want);
      // codes[d, i, r] = round(W[d, r, i] / scale[d, r])
      const c = tensorValues(codes) as Int8Array;
      for (let d = 0; d < D; d++)
        for (let r = 0; r < rows; r += 7)
          for (let i = 0; i < IN; i += 3) {
            expect(Math.abs(c[(d * IN + i) * rows + r]! - w[(d * rows + r) * IN + i]! / want[d * rows + r]!)).toBeLessThanOrEqual(
              0.5 + 1e-4,
            );
          }
      const x = [input('X', [SEQ, BATCH, IN], 11)];
      const a = await run(await createSession(original), x);
      const b = await run(await createSession(output), x);
      for (const name of ['Y', 'Y_h']) {
        const ya = a.find((o) => o.name === name)!,
          yb = b.find((o) => o.name === name)!;
        expect(cosine(ya.data as ArrayLike<number>, yb.data as ArrayLike<number>)).toBeGreaterThanOrEqual(0.999);
      }
    });
  }
});

describe('4-bit, pruning and clustering of recurrent weights (opt-in: ops=LSTM|GRU|RNN)', () => {
  const cases: [string, string[], number][] = [
    ['int4', ['--quantize', 'int4:ops=LSTM|GRU|RNN'], 0.99],
    ['magnitude 0.3', ['--prune', 'magnitude:ops=LSTM|GRU|RNN,sparsity=0.3'], 0.97],
    ['cluster k=16', ['--share', 'cluster:ops=LSTM|GRU|RNN,k=16'], 0.98],
  ];
  for (const [label, args, bound] of cases) {
    it(`${label}: W and R changed, the LSTM runs in ONNX Runtime, Y cosine ≥ ${bound}`, async () => {
      const proto = recurrentModel(specs[0]!, 40);
      const original = save(join(dir, `rec-${label.replace(/\W+/g, '_')}.onnx`), proto);
      const output = join(dir, `rec-${label.replace(/\W+/g, '_')}-out.onnx`);
      const r = cli(['compress', original, '-o', output, ...args, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout) as Result['json'];
      expect(json.passes[0]!.tensorsChanged).toBe(2);
      const x = [input('X', [SEQ, BATCH, IN], 9)];
      const a = await run(await createSession(original), x);
      const b = await run(await createSession(output), x);
      const ya = a.find((o) => o.name === 'Y')!,
        yb = b.find((o) => o.name === 'Y')!;
      expect(cosine(ya.data as ArrayLike<number>, yb.data as ArrayLike<number>)).toBeGreaterThanOrEqual(bound);
    });
  }
  it('by default these passes leave them alone, and say so', () => {
    const original = save(join(dir, 'rec-default.onnx'), recurrentModel(specs[0]!, 41));
    const r = cli(['compress', original, '-o', join(dir, 'rec-default-out.onnx'), '--quantize', 'int4']);
    expect(r.stdout).toMatch(/its ops \(LSTM\) are not selected/);
  });
});
