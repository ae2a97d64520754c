// The 8-bit weights' check of int8's default (check=measure): a weight whose int8 values move the
// outputs stays float32, said in the skips (so --strict fails), and the others are quantized. The
// model: X → MatMul(W1) → MatMul(W2). W1 has an outlier of 1000 in its first row, so that its
// per-column scale (1000/127) rounds every other value (~0.01) to 0; the data never feeds that row
// (X[:, 0] = 0), so the float model's output comes from the small values alone. Oracle: the
// original model in ONNX Runtime on the same data.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { readModel } from '../../src/io/read.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, model, node, save, tensor, values, vi } from '../convert/helpers.js';
import { cli, cosine, npy, scratch } from '../helpers.js';

const dir = scratch();

/** The first pass of `compress MODEL -o OUT --quantize SPEC --data DATA --json`, which must succeed. */
function int8Pass(model: string, out: string, spec: string, data: string): { notes: string[]; skipped: { name: string }[] } {
  const r = cli(['compress', model, '-o', out, '--quantize', spec, '--data', data, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { passes: { notes: string[]; skipped: { name: string }[] }[] }).passes[0]!;
}
const IN = 32,
  MID = 16,
  OUT = 16,
  ROWS = 64;

function outlierModel(): string {
  const w1 = Array.from(values(IN * MID, 3), (x) => x * 0.01);
  for (let c = 0; c < MID; c++) w1[c] = 1000; // row 0
  const w2 = Array.from(values(MID * OUT, 4));
  const g = graph(
    [node('MatMul', ['X', 'W1'], ['h']), node('MatMul', ['h', 'W2'], ['Y'])],
    [vi('X', [ROWS, IN])],
    [vi('Y', [ROWS, OUT])],
    [tensor('W1', [IN, MID], w1), tensor('W2', [MID, OUT], w2)],
  );
  return save(join(dir, 'outlier.onnx'), model(g, 13));
}

function data(): { path: string; x: Float32Array } {
  const x = values(ROWS * IN, 9);
  for (let r = 0; r < ROWS; r++) x[r * IN] = 0;
  const path = join(dir, 'x.npy');
  writeFileSync(path, npy(x, [ROWS, IN]));
  return { path, x };
}

async function outputCosine(original: string, output: string, x: Float32Array): Promise<number> {
  const feeds = [{ name: 'X', dtype: 1, dims: [ROWS, IN], data: x }];
  const a = (await run(await createSession(original), feeds))[0]!,
    b = (await run(await createSession(output), feeds))[0]!;
  return cosine(a.data as Float32Array, b.data as Float32Array);
}

const dtypeOf = (path: string, name: string) => {
  const m = readModel(path);
  const direct = m.graph.initializer.find((t) => t.name === name);
  if (direct) return direct.data_type;
  // Quantized: the codes of its DequantizeLinear or its integer MatMul.
  return m.graph.initializer.find((t) => t.name?.startsWith(`${name}_`) && (t.data_type === 3 || t.data_type === 2))?.data_type;
};

describe('int8 checks its 8-bit weights in the model (check=measure)', () => {
  const original = outlierModel();
  const { path: x, x: xValues } = data();

  it('keeps float32 the weight that moves the outputs, quantizes the other; cosine ≥ 0.999 where the unchecked output is far off', async () => {
    const checked = join(dir, 'checked.onnx'),
      unchecked = join(dir, 'unchecked.onnx');
    const a = cli(['compress', original, '-o', checked, '--quantize', 'int8', '--data', x, '--json']);
    expect(a.code, a.stderr).toBe(0);
    const report = JSON.parse(a.stdout) as { passes: { notes: string[]; skipped: { name: string; reason: string }[] }[] };
    expect(report.passes[0]!.skipped).toEqual([
      expect.objectContaining({ name: 'W1', reason: expect.stringMatching(/^kept float32: as int8 alone it moves the outputs to cosine/) }),
    ]);
    expect(report.passes[0]!.notes.join('\n')).toMatch(
      /the 8-bit weights checked on .*x\.npy: lowest output cosine 0\.\d+ < 0\.999 with all 2 as int8; 1 weight \(2\.0 kB\) kept float32/,
    );
    expect(dtypeOf(checked, 'W1')).toBe(1);
    expect(dtypeOf(checked, 'W2')).not.toBe(1);

    const b = cli(['compress', original, '-o', unchecked, '--quantize', 'int8:check=none']);
    expect(b.code, b.stderr).toBe(0);
    expect(dtypeOf(unchecked, 'W1')).not.toBe(1);

    expect(await outputCosine(original, checked, xValues)).toBeGreaterThanOrEqual(0.999);
    // Unchecked, every small value of W1 is 0: the output is 0 (cosine NaN) or far off.
    const far = await outputCosine(original, unchecked, xValues);
    expect(Number.isNaN(far) || far < 0.9, `unchecked cosine ${far}`).toBe(true);
  });

  it('--strict exits 3 on the weight kept float32', () => {
    const r = cli(['compress', original, '-o', join(dir, 'strict.onnx'), '--quantize', 'int8', '--data', x, '--strict']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/kept float32/);
  });
});

// Blocks are for Conv weights only (ONNX Runtime fuses a blocked int8 DequantizeLinear before a MatMul
// into MatMulNBits, which computes otherwise than the check measures): 1×1 Convs over [rows, channels, 1, 1].
const K = 64;

/** A 1×1 Conv model X [ROWS, K, 1, 1] → convs → Y, and data whose channels 0–31 are 0. */
function convChain(
  label: string,
  weights: { name: string; out: number; values: number[] }[],
): { path: string; data: string; x: Float32Array } {
  const nodes = weights.map((w, i) => node('Conv', [i === 0 ? 'X' : `h${i}`, w.name], [i === weights.length - 1 ? 'Y' : `h${i + 1}`]));
  const last = weights[weights.length - 1]!.out;
  const path = save(
    join(dir, `${label}.onnx`),
    model(
      graph(
        nodes,
        [vi('X', [ROWS, K, 1, 1])],
        [vi('Y', [ROWS, last, 1, 1])],
        weights.map((w) => tensor(w.name, [w.out, K, 1, 1], w.values)),
      ),
      13,
    ),
  );
  const x = values(ROWS * K, 13);
  for (let r = 0; r < ROWS; r++) for (let k = 0; k < 32; k++) x[r * K + k] = 0;
  const data = join(dir, `${label}-x.npy`);
  writeFileSync(data, npy(x, [ROWS, K, 1, 1]));
  return { path, data, x };
}

/** [out, K, 1, 1] of ~0.01 with 1000 at input channel 0 of every output channel. */
function outlierConv(out: number, seed: number): number[] {
  const w = Array.from(values(out * K, seed), (v) => v * 0.01);
  for (let o = 0; o < out; o++) w[o * K] = 1000;
  return w;
}

async function chainCosine(path: string, out: string, x: Float32Array): Promise<number> {
  const feeds = [{ name: 'X', dtype: 1, dims: [ROWS, K, 1, 1], data: x }];
  const ya = (await run(await createSession(path), feeds))[0]!,
    yb = (await run(await createSession(out), feeds))[0]!;
  return cosine(ya.data as Float32Array, yb.data as Float32Array);
}

const blockOf = (path: string, name: string) => {
  const dq = readModel(path).graph.node.find((n) => n.op_type === 'DequantizeLinear' && n.output[0] === name);
  return (
    dq && {
      axis: Number(dq.attribute.find((a) => a.name === 'axis')?.i),
      block: Number(dq.attribute.find((a) => a.name === 'block_size')?.i),
    }
  );
};

describe('int8 falls back on blocks of 32 along the reduction axis before keeping weights float32', () => {
  it('an outlier that ruins its channel per channel costs only its own block: blocked DequantizeLinear (opset 21), cosine ≥ 0.999, nothing float32', async () => {
    // W [16, 64, 1, 1]: 1000 at input channel 0; the data feeds channels 32–63 only. Per output
    // channel the scale 1000/127 rounds them to 0 (output 0); in blocks of 32 they keep their own.
    const { path, data, x } = convChain('blocks', [{ name: 'W', out: OUT, values: outlierConv(OUT, 5) }]);
    const out = join(dir, 'blocks-int8.onnx');
    const pass = int8Pass(path, out, 'int8', data);
    expect(pass.skipped).toEqual([]);
    expect(pass.notes.join('\n')).toMatch(
      /with all 1 as int8 per channel, 0\.999\d+ with 1 of them in blocks of 32 along the reduction axis, so those are in blocks/,
    );
    expect(readModel(out).proto.opset_import.find((o) => (o.domain ?? '') === '')?.version).toBe(21);
    expect(blockOf(out, 'W')).toEqual({ axis: 1, block: 32 });
    expect(await chainCosine(path, out, x)).toBeGreaterThanOrEqual(0.999);
  });

  it('blocks where they help, float32 where they do not: A in blocks, B (its outlier shares a block with channels in use) kept float32', async () => {
    // A [64, 64, 1, 1] as above, and A's output channel 0 made 0 (A[0, 32:] = 0); B [16, 64, 1, 1] has
    // its 1000s at input channel 0, which that 0 feeds, in the block of channels 1–31, which are in use.
    const a = outlierConv(K, 11);
    for (let i = 32; i < K; i++) a[i] = 0;
    const { path, data, x } = convChain('mixed', [
      { name: 'A', out: K, values: a },
      { name: 'B', out: OUT, values: outlierConv(OUT, 12) },
    ]);
    const out = join(dir, 'mixed-int8.onnx');
    const pass = int8Pass(path, out, 'int8', data);
    expect(pass.skipped.map((s) => s.name)).toEqual(['B']);
    expect(pass.notes.join('\n')).toMatch(/1 weight \(4\.1 kB\) kept float32, .* with the rest as int8, 1 of them in blocks of 32/);
    expect(blockOf(out, 'A')).toEqual({ axis: 1, block: 32 });
    expect(readModel(out).graph.initializer.find((t) => t.name === 'B')?.data_type).toBe(1);
    expect(await chainCosine(path, out, x)).toBeGreaterThanOrEqual(0.999);
  });
});

describe('the checks compare each output over every batch together, as the report does', () => {
  it('a batch whose one output is ~1e-6 flips sign as int8, yet over both batches the cosine is ~1: the weight is quantized', () => {
    // W [256, 1]: W[0] = 1 (exact in int8), the rest in ±0.5. Batch 2 is built against int8's
    // rounding error e = round(W/s)·s − W (s = 1/127): X2[i] = −sign(e[i]), and X2[0] makes X2·W = 1e-6,
    // so X2·W_int8 ≈ 1e-6 − Σ|e| < 0. Batch 1's output is ~100× larger than that error.
    const K = 256;
    const w = Float32Array.from(values(K, 21), (v, i) => (i === 0 ? 1 : v / 4));
    const s = Math.fround(1 / 127);
    const e = Array.from(w, (v) => Math.round(v / s) * s - v);
    const x2 = Float32Array.from(e, (d) => -Math.sign(d) || 1);
    let rest = 0;
    for (let i = 1; i < K; i++) rest += x2[i]! * w[i]!;
    x2[0] = 1e-6 - rest;
    const x1 = Float32Array.from(values(K, 22), (v) => 100 * v);
    const path = save(
      join(dir, 'scalar.onnx'),
      model(graph([node('MatMul', ['X', 'W'], ['Y'])], [vi('X', [1, K])], [vi('Y', [1, 1])], [tensor('W', [K, 1], Array.from(w))]), 13),
    );
    const data = join(dir, 'scalar-data');
    for (const [i, x] of [x1, x2].entries()) {
      mkdirSync(join(data, `test_data_set_${i}`), { recursive: true });
      writeFileSync(
        join(data, `test_data_set_${i}`, 'input_0.pb'),
        encode('onnx.TensorProto', makeTensor('X', 1, [1, K], new Uint8Array(x.buffer))),
      );
    }
    const out = join(dir, 'scalar-int8.onnx');
    const pass = int8Pass(path, out, 'int8:mode=weight', data);
    expect(pass.skipped).toEqual([]);
    expect(pass.notes.join('\n')).toMatch(/the 8-bit weights checked on .*scalar-data: lowest output cosine 0\.9999\d+ with all 1 as int8/);
    expect(dtypeOf(out, 'W')).not.toBe(1);
  });
});
