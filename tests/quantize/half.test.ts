// --quantize fp16 and bf16 (issue 17): float32 weights and compute move to the half type where ONNX
// Runtime's CPU provider runs the op in it, Casts join the rest, and nodes whose values overflow on
// the data keep float32. Figures are measured in ONNX Runtime against the float32 original.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { DataType, type ModelProto } from '../../src/ir/onnx.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, model, node, save, tensor, vi } from '../convert/helpers.js';
import { cli, cosine, fixture, scratch } from '../helpers.js';

const dir = scratch();

interface Report {
  passes: { skipped: { name: string; reason: string }[]; notes: string[] }[];
  accuracy: {
    reference: number;
    compressed: number;
    fidelity: Record<string, { cosine: number }>;
    perplexity?: { relativeIncrease: number };
  };
}

function compress(input: string, out: string, spec: string, data: string, labels?: string): Report {
  const args = ['compress', input, '-o', out, '--force', '--quantize', spec, '--eval', '--data', data, '--runs', '0', '--json'];
  const r = cli(labels ? [...args, '--labels', labels] : args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

const worstCosine = (r: Report) => Math.min(...Object.values(r.accuracy.fidelity).map((f) => f.cosine));
const ratio = (a: string, b: string) => statSync(b).size / statSync(a).size;

describe('fp16 on the fixtures', () => {
  it.each([
    ['digits', 'labels.txt'],
    ['mlp', 'labels.txt'],
  ])('%s: ≤ 0.51× the size, top-1 unchanged, cosine ≥ 0.9999', (name, labels) => {
    const input = fixture(name, 'model.onnx');
    const out = join(dir, `${name}-fp16.onnx`);
    const r = compress(input, out, 'fp16', fixture(name, 'test_data_set_0'), fixture(name, labels));
    expect(ratio(input, out)).toBeLessThanOrEqual(0.51);
    expect(r.accuracy.compressed).toBe(r.accuracy.reference);
    expect(worstCosine(r)).toBeGreaterThanOrEqual(0.9999);
    // Every float32 initializer is float16 now (keep-io keeps only the graph's inputs and outputs float32).
    const written = readModel(out);
    expect(written.graph.initializer.filter((t) => t.data_type === DataType.FLOAT)).toEqual([]);
    expect(written.graph.input[0]!.type!.tensor_type!.elem_type).toBe(DataType.FLOAT);
    expect(written.graph.output[0]!.type!.tensor_type!.elem_type).toBe(DataType.FLOAT);
  });

  it('char LM: ≤ 0.51× the size, perplexity within 0.2 %, cosine ≥ 0.9999', () => {
    const input = fixture('charlm', 'model.onnx');
    const out = join(dir, 'charlm-fp16.onnx');
    const r = compress(input, out, 'fp16', fixture('charlm', 'test_data_set_0'), fixture('charlm', 'labels_0.npy'));
    expect(ratio(input, out)).toBeLessThanOrEqual(0.51);
    expect(Math.abs(r.accuracy.perplexity!.relativeIncrease)).toBeLessThanOrEqual(0.002);
    expect(worstCosine(r)).toBeGreaterThanOrEqual(0.9999);
  });
});

describe('bf16', () => {
  it('digits: weights stored in bfloat16 (the CPU provider computes Conv/Gemm in float32): ≤ 0.52×, top-1 unchanged', () => {
    const input = fixture('digits', 'model.onnx');
    const out = join(dir, 'digits-bf16.onnx');
    const r = compress(input, out, 'bf16', fixture('digits', 'test_data_set_0'), fixture('digits', 'labels.txt'));
    expect(ratio(input, out)).toBeLessThanOrEqual(0.52);
    expect(r.accuracy.compressed).toBe(r.accuracy.reference);
    expect(worstCosine(r)).toBeGreaterThanOrEqual(0.9999);
    // The reason for each node kept in float32 is said, and it is the measured one.
    expect(r.passes[0]!.skipped.some((s) => /no bfloat16 Conv \(measured\)/.test(s.reason))).toBe(true);
  });
});

/**
 * x [1, 8] → MatMul W (all 100) → MatMul W → y (≈ 4.6e5: beyond float16's 65504), and x → MatMul V → z
 * (≈ 0.03): finite in float32. With keep-io=false the outputs are float16 where they can be.
 */
function overflowing(): ModelProto {
  const g = graph(
    [node('MatMul', ['x', 'W'], ['a']), node('MatMul', ['a', 'W'], ['y']), node('MatMul', ['x', 'V'], ['z'])],
    [vi('x', [1, 8])],
    [vi('y', [1, 8]), vi('z', [1, 8])],
    [
      tensor('W', [8, 8], new Array(64).fill(100)),
      tensor(
        'V',
        [8, 8],
        Array.from({ length: 64 }, (_, i) => 0.001 * (1 + (i % 5))),
      ),
    ],
  );
  return model(g, 17);
}

const halfValue = (h: number) => {
  const e = (h >> 10) & 0x1f,
    f = h & 0x3ff,
    sign = h & 0x8000 ? -1 : 1;
  return e === 31 ? (f ? NaN : sign * Infinity) : e === 0 ? sign * f * 2 ** -24 : sign * (1 + f / 1024) * 2 ** (e - 15);
};

async function outputsOf(path: string): Promise<Float32Array[]> {
  const session = await createSession(path);
  const x = Float32Array.from({ length: 8 }, (_, i) => 0.5 + i / 16);
  const input =
    readModel(path).graph.input[0]!.type!.tensor_type!.elem_type === DataType.FLOAT16
      ? { name: 'x', dtype: DataType.FLOAT16, dims: [1, 8], data: Uint16Array.from(x, (v) => Math.round((v - 0.5) * 2048) + 0x3800) }
      : { name: 'x', dtype: DataType.FLOAT, dims: [1, 8], data: x };
  const outs = await run(session, [input]);
  return outs.map((o) => (o.dtype === DataType.FLOAT16 ? Float32Array.from(o.data as Uint16Array, halfValue) : (o.data as Float32Array)));
}

describe('q4f16: 4-bit weights with float16 compute', () => {
  const perplexity = (r: Report) => r.accuracy.compressed;
  const args = (out: string, specs: string[]) => [
    'compress',
    fixture('charlm', 'model.onnx'),
    '-o',
    out,
    '--force',
    ...specs.flatMap((s) => ['--quantize', s]),
    '--eval',
    '--data',
    fixture('charlm', 'test_data_set_0'),
    '--labels',
    fixture('charlm', 'labels_0.npy'),
    '--runs',
    '0',
    '--json',
  ];
  const run4 = (out: string, specs: string[]) => {
    const r = cli(args(out, specs));
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Report;
  };

  it.each([[['fp16', 'int4']], [['int4', 'fp16']]])(
    '%s: MatMulNBits with float16 scales, perplexity within 1 percent of float32-compute int4',
    (specs) => {
      const int4 = run4(join(dir, 'charlm-int4.onnx'), ['int4']);
      const out = join(dir, `charlm-${specs.join('-')}.onnx`);
      const q4f16 = run4(out, specs);
      expect(Math.abs(perplexity(q4f16) / perplexity(int4) - 1)).toBeLessThanOrEqual(0.01);
      expect(statSync(out).size).toBeLessThan(statSync(join(dir, 'charlm-int4.onnx')).size);
      const written = readModel(out);
      const nbits = written.graph.node.filter((n) => n.op_type === 'MatMulNBits');
      expect(nbits.length).toBeGreaterThan(0);
      const types = new Map(written.graph.initializer.map((t) => [t.name, t.data_type]));
      for (const n of nbits) expect(types.get(n.input[2]!)).toBe(DataType.FLOAT16);
      expect(written.graph.initializer.filter((t) => t.data_type === DataType.FLOAT)).toEqual([]);
    },
  );
});

describe('measured fallback', () => {
  const input = save(join(dir, 'overflow.onnx'), overflowing());

  it('a blind conversion (check=none) gives inf; the measured one keeps the overflowing nodes (and that output) in float32', async () => {
    const reference = await outputsOf(input);
    expect(reference.every((o) => o.every(Number.isFinite))).toBe(true);

    const blind = join(dir, 'overflow-blind.onnx');
    expect(cli(['compress', input, '-o', blind, '--quantize', 'fp16:check=none,keep-io=false']).code).toBe(0);
    const broken = await outputsOf(blind);
    expect(broken[0]!.some((v) => v === Infinity)).toBe(true);

    const measured = join(dir, 'overflow-measured.onnx');
    const r = cli(['compress', input, '-o', measured, '--quantize', 'fp16:keep-io=false', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const kept = (JSON.parse(r.stdout) as Report).passes[0]!.skipped;
    expect(kept.map((s) => s.name)).toEqual(['MatMul_y']);
    expect(kept[0]!.reason).toMatch(/'y' reaches .* beyond float16's range/);
    const fixed = await outputsOf(measured);
    for (const [i, o] of fixed.entries()) {
      expect(o.every(Number.isFinite)).toBe(true);
      expect(cosine(o, reference[i]!)).toBeGreaterThanOrEqual(0.9999);
    }
    // y stays float32 (its values do not fit float16); z, in range, is float16.
    expect(readModel(measured).graph.output.map((o) => o.type!.tensor_type!.elem_type)).toEqual([DataType.FLOAT, DataType.FLOAT16]);
  });
});

describe('what fp16 leaves alone', () => {
  // Weights read only by nodes that keep float32 are stored half and cast back (weight-only); include
  // and exclude pick them as every pass picks a weight, by its name and its readers' names. The digits
  // CNN's Conv and Gemm weights take that form in bfloat16 (the CPU provider has no bfloat16 Conv/Gemm).
  it.each([
    ['exclude=/fc1/Gemm (a reader)', 'exclude=/fc1/Gemm', ['fc1.weight'], ['conv2.weight', 'fc2.weight']],
    ['include=fc2.weight (the weight itself)', 'include=fc2.weight', ['conv2.weight', 'fc1.weight'], ['fc2.weight']],
  ])('weight-only storage follows %s', (_, selection, float32, halved) => {
    const input = fixture('digits', 'model.onnx');
    const out = join(dir, `digits-bf16-${float32.length}.onnx`);
    const r = compress(input, out, `bf16:${selection},check=none`, fixture('digits', 'test_data_set_0'), fixture('digits', 'labels.txt'));
    const types = new Map(readModel(out).graph.initializer.map((t) => [t.name, t.data_type]));
    for (const name of float32) expect(types.get(name), name).toBe(DataType.FLOAT);
    for (const name of halved) {
      expect(types.has(name), name).toBe(false);
      expect(types.get(`${name}_bfloat16`), name).toBe(DataType.BFLOAT16);
    }
    expect(r.accuracy.compressed).toBe(r.accuracy.reference);
    expect(worstCosine(r)).toBeGreaterThanOrEqual(0.9999);
  });

  it('an fp16 model: says it is already float16 and changes nothing (and --strict exits 3)', () => {
    const once = join(dir, 'mlp-fp16-once.onnx');
    expect(cli(['compress', fixture('mlp', 'model.onnx'), '-o', once, '--quantize', 'fp16:check=none,keep-io=false']).code).toBe(0);
    const twice = join(dir, 'mlp-fp16-twice.onnx');
    const r = cli(['compress', once, '-o', twice, '--quantize', 'fp16']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/already float16/);
    expect(statSync(twice).size).toBe(statSync(once).size);
    expect(cli(['compress', once, '-o', twice, '--force', '--quantize', 'fp16', '--strict']).code).toBe(3);
  });

  it("keep-io=false: the graph's inputs and outputs become float16 too, and the model runs on float16 inputs", async () => {
    const out = join(dir, 'mlp-fp16-io.onnx');
    expect(cli(['compress', fixture('mlp', 'model.onnx'), '-o', out, '--quantize', 'fp16:keep-io=false']).code).toBe(0);
    const written = readModel(out);
    expect(written.graph.input[0]!.type!.tensor_type!.elem_type).toBe(DataType.FLOAT16);
    expect(written.graph.output[0]!.type!.tensor_type!.elem_type).toBe(DataType.FLOAT16);
    const session = await createSession(out);
    const dims = written.graph.input[0]!.type!.tensor_type!.shape!.dim.map((d) => (d.dim_value === undefined ? 2 : Number(d.dim_value)));
    const [y] = await run(session, [
      { name: session.inputNames[0]!, dtype: DataType.FLOAT16, dims, data: new Uint16Array(dims.reduce((a, b) => a * b, 1)).fill(0x3c00) },
    ]);
    expect(y!.dtype).toBe(DataType.FLOAT16);
  });

  it('a model with float16, int8 and float64 inputs: the check synthesizes them, and the float32 part moves', () => {
    const input = fixture('conformance', 'dtypes', 'model.onnx');
    const out = join(dir, 'dtypes-fp16.onnx');
    const r = cli(['compress', input, '-o', out, '--quantize', 'fp16', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const notes = (JSON.parse(r.stdout) as Report).passes[0]!.notes.join(' ');
    expect(notes).toMatch(/[1-9]\d* of \d+ nodes with float32 values compute in float16/);
    expect(notes).toMatch(/measured on 2 synthesized batches/);
  });

  it('a model that does not run on synthesized inputs: converted without the check, and said so', () => {
    const g = graph(
      [node('MatMul', ['x', 'W'], ['h']), node('Reshape', ['h', 'shape'], ['y'])],
      [vi('x', ['N', 64])],
      [vi('y', [3, 'M'])],
      [
        tensor(
          'W',
          [64, 64],
          Array.from({ length: 4096 }, (_, i) => Math.sin(i) * 0.1),
        ),
        tensor('shape', [2], [3, -1], DataType.INT64),
      ],
    );
    const input = save(join(dir, 'needs-data.onnx'), model(g, 17));
    const r = cli(['compress', input, '-o', join(dir, 'needs-data-fp16.onnx'), '--quantize', 'fp16']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/not measured: the model could not be run for the check, so it is converted without it, as check=none/);
  });

  it('refuses calibration with check=none before reading the model', () => {
    const r = cli([
      'compress',
      join(dir, 'no-such-model.onnx'),
      '-o',
      join(dir, 'x.onnx'),
      '--quantize',
      `fp16:check=none,calibration=${fixture('mlp', 'test_data_set_0')}`,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/calibration is only read by check=measure/);
  });
});
