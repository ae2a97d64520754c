// Static int8 (QDQ): accuracy and size measured in ONNX Runtime against the original, and the graph
// ONNX Runtime makes of the output, which must hold its integer kernels (the speed itself is measured
// in bench/static-latency.mjs, not asserted here).
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { readModel } from '../../src/io/read.js';
import { DataType } from '../../src/ir/onnx.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { runtime } from '../../src/runtime/ort.js';
import { cli, fixture, scratch } from '../helpers.js';
import { compressAndEvaluate } from './helpers.js';
import { graph, int, ints, model, node, save, tensor, values, vi } from '../convert/helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const MLP = fixture('mlp', 'model.onnx');
const CHARLM = fixture('charlm', 'model.onnx');

/** The op types (domain-qualified outside the default) of the graph ONNX Runtime builds from `path`, with their counts. */
async function optimizedOps(path: string): Promise<Record<string, number>> {
  const ort = await runtime();
  const optimized = `${path}.ort.onnx`;
  const session = await ort.InferenceSession.create(path, {
    graphOptimizationLevel: 'extended',
    optimizedModelFilePath: optimized,
    intraOpNumThreads: 1,
    logSeverityLevel: 4,
  });
  await session.release();
  const counts: Record<string, number> = {};
  for (const n of readModel(optimized).graph.node) {
    const op = `${n.domain ? `${n.domain}.` : ''}${n.op_type}`;
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return counts;
}

describe('quantize int8:mode=static', () => {
  // Measured (calibrated on test_data_set_1, 64 images; evaluated on test_data_set_0, 360): top-1
  // 0.9806 → 0.9806, logits cosine 0.99997, 155 kB → 42.9 kB (0.277). Latency (bench/RESULTS.md):
  // 0.63× fp32 at full batch.
  it('digits CNN: top-1 within 0.3 pt, ≤ 0.30× the size; ONNX Runtime runs conv2 as QLinearConv and both Gemms as QGemm, conv1 in float', async () => {
    const out = join(dir, 'digits-static.onnx');
    const { result, evaluation, output } = await compressAndEvaluate(
      DIGITS,
      out,
      [['quantize', `int8:mode=static,calibration=${fixture('digits', 'test_data_set_1')}`]],
      { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') },
    );
    expect(evaluation.accuracy.metric).toBe('top1');
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
    expect(statSync(out).size / statSync(DIGITS).size).toBeLessThanOrEqual(0.3);
    const notes = result.passes[0]!.notes.join('\n');
    expect(notes).toMatch(/1 BatchNormalization folded into the Conv before it/);
    expect(notes).toMatch(/1 Conv, 2 Gemm computed in integers/);
    // conv1 reads one channel: QLinearConv would be slower than the float Conv, so it stays float, weight included.
    expect(notes).toMatch(
      /1 Conv kept in float, weight included: conv1\.weight \(Conv '\/conv1\/Conv' reads 1 channel × a 3×3 kernel, a depth of 9, below 72 with fewer than 8 channels/,
    );
    // Every other weight int8 per channel, fc2's too (below min-size, but a float weight would keep its Gemm in float).
    expect(
      result.passes[0]!.tensors.filter((t) => t.dtypeAfter === 'int8')
        .map((t) => t.name)
        .sort(),
    ).toEqual(['conv2.weight', 'fc1.weight', 'fc2.weight']);
    expect(output.graph.initializer.find((t) => t.name === 'conv1.weight')?.data_type).toBe(DataType.FLOAT);
    expect(output.graph.node.some((n) => n.op_type === 'BatchNormalization')).toBe(false);
    const ops = await optimizedOps(out);
    expect(ops['com.microsoft.QLinearConv'] ?? ops.QLinearConv).toBe(1);
    expect(ops['com.microsoft.QGemm']).toBe(2);
    expect(ops.Conv).toBe(1);
    for (const float of ['Gemm', 'MatMul', 'BatchNormalization', 'Add']) expect(ops[float], float).toBeUndefined();
    // MaxPool and Flatten on the 8-bit codes with no pair around them; fc2's QGemm writes float logits
    // with its bias added inside. What is left: the QuantizeLinear of conv1's output, no DequantizeLinear.
    expect(ops.QuantizeLinear).toBe(1);
    expect(ops.DequantizeLinear).toBeUndefined();
  });

  // Measured: top-1 0.9778 → 0.9778, cosine 0.99999, 69.6 kB → 20.8 kB (0.2995). Latency (bench/RESULTS.md):
  // 0.69× fp32 at full batch.
  it('MLP: top-1 within 0.3 pt, ≤ 0.30× the size, its three Gemms computed as QGemm (biases int32, the last writing float)', async () => {
    const out = join(dir, 'mlp-static.onnx');
    const { evaluation, output } = await compressAndEvaluate(
      MLP,
      out,
      [['quantize', `int8:mode=static,calibration=${fixture('mlp', 'test_data_set_1')}`]],
      { data: fixture('mlp', 'test_data_set_0'), labels: fixture('mlp', 'labels.txt') },
    );
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
    expect(statSync(out).size / statSync(MLP).size).toBeLessThanOrEqual(0.3);
    // A bias's scale is the Mul of the input's and the weight's scales, not stored again.
    const biasDq = output.graph.node.filter((n) => n.op_type === 'DequantizeLinear' && n.input[0]!.endsWith('bias_int32'));
    expect(biasDq).toHaveLength(3);
    for (const dq of biasDq) {
      expect(output.graph.initializer.some((t) => t.name === dq.input[1])).toBe(false);
      expect(output.graph.node.find((n) => n.output[0] === dq.input[1])?.op_type).toBe('Mul');
    }
    const ops = await optimizedOps(out);
    expect(ops).toEqual({ QuantizeLinear: 1, 'com.microsoft.QGemm': 3 });
  });

  // Measured: top-1 unchanged, cosine 0.99998. Symmetric zero points do not clip at 0, so the Relus stay.
  it('MLP with activation-symmetric=true: the Relus stay, between pairs, and every Gemm is still a QGemm', async () => {
    const out = join(dir, 'mlp-static-symmetric.onnx');
    const { evaluation } = await compressAndEvaluate(
      MLP,
      out,
      [['quantize', `int8:mode=static,activation-symmetric=true,calibration=${fixture('mlp', 'test_data_set_1')}`]],
      { data: fixture('mlp', 'test_data_set_0'), labels: fixture('mlp', 'labels.txt') },
    );
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
    const ops = await optimizedOps(out);
    expect(ops['com.microsoft.QGemm']).toBe(3);
    expect(ops.Relu).toBe(2);
    for (const float of ['Gemm', 'com.microsoft.FusedGemm']) expect(ops[float], float).toBeUndefined();
  });

  // Measured (calibrated on fixtures/charlm/calibration, 32 windows of training text): perplexity
  // 3.7446 → 3.7510 (+0.17 %). Latency (bench/RESULTS.md): about 0.7× fp32.
  it('char LM: perplexity within +1 %, its 19 MatMuls computed as MatMulIntegerToFloat, embeddings weight-only', async () => {
    const out = join(dir, 'charlm-static.onnx');
    const { result, evaluation } = await compressAndEvaluate(
      CHARLM,
      out,
      [['quantize', `int8:mode=static,calibration=${fixture('charlm', 'calibration')}`]],
      { data: fixture('charlm', 'test_data_set_0') },
    );
    expect(evaluation.accuracy.metric).toBe('perplexity');
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.01);
    expect(statSync(out).size / statSync(CHARLM).size).toBeLessThanOrEqual(0.3);
    const forms = result.passes[0]!.tensors.map((t) => t.form ?? '');
    expect(forms.filter((f) => f.includes('computed in integers (static)'))).toHaveLength(19);
    expect(forms.filter((f) => f.startsWith('DequantizeLinear'))).toHaveLength(2);
    expect(result.passes[0]!.skipped).toEqual([]);
    const ops = await optimizedOps(out);
    expect(ops['com.microsoft.MatMulIntegerToFloat']).toBe(19);
    // The only DequantizeLinear left are the two embeddings' (weight-only): the Shape nodes reading a
    // LayerNormalization's output read the float value, not a dequantized copy of it.
    expect(ops.DequantizeLinear).toBe(2);
    // Softmax and LayerNormalization stay in float.
    expect(ops.Softmax).toBe(3);
    expect(ops.LayerNormalization).toBe(7);
  });

  // A small residual CNN built here: Conv → Relu, a block whose Add is followed by a Relu, a linear
  // residual Add, a Concat of two branches, two more Convs. Measured: cosine 0.9997 against the
  // float model; latency (bench/RESULTS.md) 0.57× fp32 at batch 64, where the Add and Concat in
  // float with pairs around them measured 0.72×.
  it('a residual Add and a Concat between quantized values run on the codes (QLinearAdd, QLinearConcat)', async () => {
    const channels = 16;
    const conv = (x: string, w: string, b: string, y: string) => node('Conv', [x, w, b], [y], [ints('pads', [1, 1, 1, 1])]);
    const weights: [string, number, number][] = [
      ['w0', channels, 8],
      ['w1', channels, channels],
      ['w2', channels, channels],
      ['w3', channels, channels],
      ['w4', channels, 2 * channels],
      ['w5', channels, channels],
    ];
    const initializers = weights.flatMap(([w, out, inputs], i) => [
      tensor(
        w,
        [out, inputs, 3, 3],
        [...values(out * inputs * 9, i + 1)].map((v) => v * Math.sqrt(1 / (inputs * 9))),
      ),
      tensor(
        `b${w.slice(1)}`,
        [out],
        [...values(out, i + 11)].map((v) => v * 0.05),
      ),
    ]);
    const nodes = [
      conv('x', 'w0', 'b0', 'c0'),
      node('Relu', ['c0'], ['r0']),
      conv('r0', 'w1', 'b1', 'c1'),
      node('Relu', ['c1'], ['r1']),
      conv('r1', 'w2', 'b2', 'c2'),
      node('Add', ['c2', 'r0'], ['a1']),
      node('Relu', ['a1'], ['r2']),
      conv('r2', 'w3', 'b3', 'c3'),
      node('Add', ['c3', 'r2'], ['a2']),
      node('Concat', ['a2', 'r2'], ['cat'], [int('axis', 1)]),
      conv('cat', 'w4', 'b4', 'c4'),
      node('Relu', ['c4'], ['r4']),
      conv('r4', 'w5', 'b5', 'y'),
    ];
    const original = save(
      join(dir, 'residual.onnx'),
      model(graph(nodes, [vi('x', ['N', 8, 16, 16])], [vi('y', ['N', channels, 16, 16])], initializers), 17, { ir_version: 10 }),
    );
    const dataSet = (name: string, seed: number) => {
      const folder = join(dir, name, 'test_data_set_0');
      mkdirSync(folder, { recursive: true });
      const x = Float32Array.from(values(32 * 8 * 16 * 16, seed), (v) => (v + 2) / 4);
      writeFileSync(
        join(folder, 'input_0.pb'),
        encode('onnx.TensorProto', makeTensor('x', DataType.FLOAT, [32, 8, 16, 16], new Uint8Array(x.buffer))),
      );
      return join(dir, name);
    };
    const out = join(dir, 'residual-static.onnx');
    const { evaluation } = await compressAndEvaluate(
      original,
      out,
      [['quantize', `int8:mode=static,calibration=${dataSet('residual-calibration', 5)}`]],
      { data: dataSet('residual-eval', 6) },
    );
    expect(evaluation.accuracy.fidelity.y!.cosine).toBeGreaterThan(0.999);
    const ops = await optimizedOps(out);
    expect(ops.QLinearConv).toBe(6);
    expect(ops['com.microsoft.QLinearAdd']).toBe(2);
    expect(ops['com.microsoft.QLinearConcat']).toBe(1);
    for (const float of ['Add', 'Concat', 'Conv', 'Relu']) expect(ops[float], float).toBeUndefined();
    // The input's QuantizeLinear and the output's DequantizeLinear, nothing between.
    expect([ops.QuantizeLinear, ops.DequantizeLinear]).toEqual([1, 1]);
  });

  it("method=percentile, entropy and mse clip ranges inside minmax's, warn on few samples, and keep top-1", async () => {
    const data = { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') };
    const calibration = fixture('digits', 'test_data_set_1');
    const runs = [];
    for (const method of ['minmax', 'percentile,percentile=99.9', 'entropy', 'mse']) {
      const out = join(dir, `digits-${method.replace(/[,=]/g, '_')}.onnx`);
      runs.push(
        await compressAndEvaluate(DIGITS, out, [['quantize', `int8:mode=static,method=${method},calibration=${calibration}`]], data),
      );
    }
    const [minmax, percentile, entropy, mse] = runs.map((r) => r.result.passes[0]!);
    for (const [name, pass] of [
      ['percentile', percentile],
      ['entropy', entropy],
      ['mse', mse],
    ] as const) {
      expect(pass!.notes).toContain(
        `warning: method=${name} on 64 calibration samples (fewer than 100): the tails it clips are measured on few values; give more samples, or method=minmax`,
      );
      for (const [value, range] of Object.entries(pass!.ranges!.values)) {
        const wide = minmax!.ranges!.values[value]!;
        expect(range.min, value).toBeGreaterThanOrEqual(wide.min);
        expect(range.max, value).toBeLessThanOrEqual(wide.max);
      }
    }
    expect(minmax!.notes.join()).not.toMatch(/warning/);
    for (const clipped of [entropy, mse])
      expect(Object.entries(clipped!.ranges!.values).some(([v, r]) => r.max < minmax!.ranges!.values[v]!.max)).toBe(true);
    for (const r of runs) expect(r.evaluation.accuracy.drop).toBeLessThanOrEqual(0.01);
    // Measured: mse 0.99996, minmax 0.99997, entropy 0.99994.
    expect(runs[3]!.evaluation.accuracy.fidelity!.logits!.cosine).toBeGreaterThan(0.999);
  });

  it('activation-symmetric=true on uint8 spans ±max|x| over all 256 codes around 128, as ONNX Runtime does', async () => {
    const out = join(dir, 'digits-symmetric-uint8.onnx');
    const data = { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') };
    const calibration = fixture('digits', 'test_data_set_1');
    const run = await compressAndEvaluate(
      DIGITS,
      out,
      [['quantize', `int8:mode=static,activation-symmetric=true,calibration=${calibration}`]],
      data,
    );
    // ONNX Runtime's compute_scale_zp(symmetric=True) for uint8: scale 2·absmax/255, zero point 128.
    for (const [value, r] of Object.entries(run.result.passes[0]!.ranges!.values)) {
      expect(r.zeroPoint, value).toBe(128);
      expect(r.scale, value).toBeCloseTo((2 * Math.max(Math.abs(r.min), Math.abs(r.max))) / 255, 6);
    }
    // Measured: cosine 0.99990 and top-1 unchanged (with half that scale it was 0.961 and a 4.4-point drop).
    expect(run.evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
    expect(run.evaluation.accuracy.fidelity!.logits!.cosine).toBeGreaterThan(0.999);
  });

  it('the ranges a run used are in its JSON report; ranges=REPORT reuses them and writes the same bytes', () => {
    const first = join(dir, 'ranges-a.onnx'),
      second = join(dir, 'ranges-b.onnx'),
      report = join(dir, 'ranges-a.json');
    const calibration = fixture('digits', 'test_data_set_1');
    const a = cli([
      'compress',
      DIGITS,
      '-o',
      first,
      '--quantize',
      `int8:mode=static,method=entropy,calibration=${calibration}`,
      '--report',
      report,
    ]);
    expect(a.code, a.stderr).toBe(0);
    const ranges = JSON.parse(readFileSync(report, 'utf8')).passes[0].ranges;
    expect(ranges.method).toBe('entropy');
    expect(ranges.samples).toBe(64);
    // conv1 stays float: the first quantized value is its Relu's output, what conv2 reads.
    expect(ranges.values['/relu/Relu_output_0']).toEqual(
      expect.objectContaining({
        min: expect.any(Number),
        max: expect.any(Number),
        scale: expect.any(Number),
        zeroPoint: expect.any(Number),
      }),
    );
    const b = cli(['compress', DIGITS, '-o', second, '--quantize', `int8:mode=static,ranges=${report}`]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/activation ranges read from .*ranges-a\.json \(entropy on /);
    expect(readFileSync(second).equals(readFileSync(first))).toBe(true);
    // A file of the ranges object alone works too; one missing a value the model needs is refused, naming it.
    const alone = join(dir, 'ranges-alone.json'),
      partial = join(dir, 'ranges-partial.json');
    writeFileSync(alone, JSON.stringify(ranges));
    expect(cli(['compress', DIGITS, '-o', join(dir, 'ranges-c.onnx'), '--quantize', `int8:mode=static,ranges=${alone}`]).code).toBe(0);
    writeFileSync(partial, JSON.stringify({ values: { '/relu/Relu_output_0': ranges.values['/relu/Relu_output_0'] } }));
    const c = cli(['compress', DIGITS, '-o', join(dir, 'ranges-d.onnx'), '--quantize', `int8:mode=static,ranges=${partial}`]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/ranges .*ranges-partial\.json: no range for '.*', which this model quantizes/);
  });
});

describe('quantize int8:mode=static: refusals', () => {
  it('mode=static without calibration or ranges is a usage error before the model is read', () => {
    const r = cli(['compress', join(dir, 'no-such-model.onnx'), '-o', join(dir, 'x.onnx'), '--quantize', 'int8:mode=static']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mode=static needs calibration=DATA .* or ranges=FILE/);
    for (const [spec, message] of [
      ['int8:method=entropy', /method= applies to mode=static/],
      ['int8:mode=static,calibration=fixtures,percentile=99', /percentile= applies to method=percentile/],
      ['int8:mode=static,calibration=fixtures,symmetric=false', /symmetric int8/],
      ['int8:mode=static,ranges=no-such.json', /ranges: no-such.json: no such file/],
    ] as const) {
      const x = cli(['compress', join(dir, 'no-such-model.onnx'), '-o', join(dir, 'x.onnx'), '--quantize', spec]);
      expect(x.code, spec).toBe(2);
      expect(x.stderr, spec).toMatch(message);
    }
  });

  it('calibration data that does not fit the model: one line naming the file and the input, exit 1, nothing written', () => {
    const bad = join(dir, 'bad-calibration', 'test_data_set_0');
    mkdirSync(bad, { recursive: true });
    writeFileSync(
      join(bad, 'input_0.pb'),
      encode('onnx.TensorProto', makeTensor('input', DataType.FLOAT, [2, 64], new Uint8Array(2 * 64 * 4))),
    );
    const out = join(dir, 'bad.onnx');
    const r = cli(['compress', DIGITS, '-o', out, '--quantize', `int8:mode=static,calibration=${join(dir, 'bad-calibration')}`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /calibration data .*bad-calibration: input 'input' is float32 \[N, 1, 8, 8\], the data gives float32 \[2, 64\]/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('calibration data holding NaN or infinity is refused, naming the input', () => {
    const bad = join(dir, 'nan-calibration', 'test_data_set_0');
    mkdirSync(bad, { recursive: true });
    const values = new Float32Array(2 * 64).fill(0.5);
    values[70] = NaN;
    writeFileSync(
      join(bad, 'input_0.pb'),
      encode('onnx.TensorProto', makeTensor('input', DataType.FLOAT, [2, 1, 8, 8], new Uint8Array(values.buffer))),
    );
    const out = join(dir, 'nan.onnx');
    const r = cli(['compress', DIGITS, '-o', out, '--quantize', `int8:mode=static,calibration=${join(dir, 'nan-calibration')}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /calibration data .*nan-calibration: input 'input' of .* holds NaN at element 70: calibration needs finite values/,
    );
    expect(existsSync(out)).toBe(false);
  });
});
