import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { floatValues, tensorValues } from '../../src/ir/tensor.js';
import { readModel } from '../../src/io/read.js';
import { perBlock } from '../../src/kernels/quantize.js';
import { countParameters } from '../../src/report/inspect.js';
import { expectSameForThreads, fixture, LAZY_READ, scratch } from '../helpers.js';
import { compressAndEvaluate, dequantized, dequantizedInteger } from '../quantize/helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');
const digitsData = { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') };
const lmData = { data: fixture('charlm', 'test_data_set_0') };
const path = (name: string) => join(dir, name);

function zeroFraction(values: ArrayLike<number>): number {
  let z = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) z++;
  return z / values.length;
}

describe('magnitude pruning', () => {
  // Measured on the digits CNN: 50 % per tensor → top-1 0.9806 → 0.9778; 80 % global → 0.9694.
  it('per tensor: each chosen tensor loses exactly the fraction asked, and the model runs', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(
      DIGITS,
      path('mag50.onnx'),
      [['prune', 'magnitude:sparsity=0.5']],
      digitsData,
    );
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.01);
    for (const t of result.passes[0]!.tensors) {
      const values = floatValues(output.graph.initializer.find((i) => i.name === t.name)!);
      expect(zeroFraction(values)).toBeCloseTo(Math.floor(0.5 * values.length) / values.length, 12);
      expect(t.sparsity).toBeCloseTo(zeroFraction(values), 12);
    }
  });

  it('global at 80 %: one threshold, overall sparsity on target, sparse storage shrinks the file', async () => {
    const out = path('mag80g.onnx');
    const { result, evaluation, output } = await compressAndEvaluate(
      DIGITS,
      out,
      [['prune', 'magnitude:sparsity=0.8,scope=global']],
      digitsData,
    );
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.03);
    const pruned = result.passes[0]!.tensors;
    const total = pruned.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const zeros = pruned.reduce((n, t) => n + t.sparsity! * t.shape.reduce((a, b) => a * b, 1), 0);
    expect(zeros / total).toBeGreaterThan(0.79);
    expect(zeros / total).toBeLessThan(0.81);
    // Layers end up with different sparsities under one threshold.
    expect(new Set(pruned.map((t) => t.sparsity!.toFixed(2))).size).toBeGreaterThan(1);
    expect(output.graph.sparse_initializer.length).toBeGreaterThan(0);
    expect(statSync(out).size).toBeLessThan(0.6 * statSync(DIGITS).size);
    expect(result.passes.map((p) => p.method)).toEqual(['magnitude', 'sparse-storage']);
  });

  // Measured on the char LM (512 held-out tokens): 30 % per tensor → perplexity −0.14 %, 50 % → +13.2 %,
  // 70 % → +178 %. The bounds leave a little room around the first two.
  it.each([
    [0.3, -0.01, 0.01],
    [0.5, 0.08, 0.18],
  ])('the language model at %s: relative perplexity increase between %s and %s', async (sparsity, low, high) => {
    const { evaluation } = await compressAndEvaluate(
      fixture('charlm', 'model.onnx'),
      path(`lm-mag${sparsity}.onnx`),
      [['prune', `magnitude:sparsity=${sparsity}`]],
      lmData,
    );
    expect(evaluation.accuracy.drop).toBeGreaterThan(low);
    expect(evaluation.accuracy.drop).toBeLessThan(high);
  });

  // Both int8 forms: weight-only (DequantizeLinear), and the default's integer Gemms (codes stored transposed).
  it.each(['int8:mode=weight,symmetric=false', 'int8:symmetric=false'])('then %s keeps every pruned zero exactly zero', async (spec) => {
    const { output } = await compressAndEvaluate(
      DIGITS,
      path(`mag-q8-${spec.replace(/[:=,]/g, '_')}.onnx`),
      [
        ['prune', 'magnitude:sparsity=0.6'],
        ['quantize', spec],
      ],
      digitsData,
    );
    const original = readModel(DIGITS);
    const pruned = await compressAndEvaluate(
      DIGITS,
      path('mag-only.onnx'),
      [['prune', 'magnitude:sparsity=0.6,storage=dense']],
      digitsData,
    );
    for (const name of ['fc1.weight', 'conv2.weight', 'fc2.weight']) {
      const before = floatValues(pruned.output.graph.initializer.find((t) => t.name === name)!);
      const after =
        spec.includes('mode=weight') || name.startsWith('conv')
          ? dequantized(output, name)
          : dequantizedInteger(output, name, { transposed: true });
      let zeros = 0;
      for (let i = 0; i < before.length; i++)
        if (before[i] === 0) {
          expect(after[i]).toBe(0);
          zeros++;
        }
      expect(zeros / before.length).toBeGreaterThanOrEqual(0.59);
    }
    expect(original.graph.initializer.length).toBeGreaterThan(0);
  });
});

describe('N:M pruning', () => {
  it('2:4 along the reduction axis: at most 2 non-zeros in every group of 4', async () => {
    const { evaluation, output, result } = await compressAndEvaluate(DIGITS, path('nm24.onnx'), [['prune', 'nm:n=2,m=4']], digitsData);
    // Measured: top-1 0.9806 → 0.9694.
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.03);
    for (const t of result.passes[0]!.tensors) {
      const init = output.graph.initializer.find((i) => i.name === t.name)!;
      const dims = init.dims.map(Number);
      // Conv weights reduce over input channels (axis 1); the Gemms use transB, so K is axis 1 too.
      const axis = 1;
      const values = floatValues(init);
      const groups = perBlock(dims, axis, 4);
      const buf = new Float32Array(4),
        idx = new Int32Array(4);
      for (let g = 0; g < groups.count; g++) {
        const n = groups.gather(g, values, buf, idx);
        let nonzero = 0;
        for (let k = 0; k < n; k++) if (buf[k] !== 0) nonzero++;
        expect(nonzero).toBeLessThanOrEqual(2);
      }
      expect(t.sparsity).toBeCloseTo(0.5, 2);
    }
  });
});

describe('structured pruning', () => {
  it('CNN at 30 %: channels removed through BatchNorm, pooling and Flatten into the Gemm; shapes and parameters match', async () => {
    const out = path('cnn-s30.onnx');
    const { result, evaluation, output } = await compressAndEvaluate(DIGITS, out, [['prune', 'structured:ratio=0.3']], {
      ...digitsData,
      runs: 20,
    });
    const shape = (name: string) => output.graph.initializer.find((t) => t.name === name)!.dims.map(Number);
    expect(shape('conv1.weight')).toEqual([12, 1, 3, 3]);
    expect(shape('bn1.running_mean')).toEqual([12]);
    expect(shape('conv2.weight')).toEqual([23, 12, 3, 3]);
    expect(shape('fc1.weight')[0]).toBe(45);
    expect(shape('fc1.weight')[1]! % 23).toBe(0);
    expect(shape('fc2.weight')).toEqual([10, 45]);
    expect(result.passes[0]!.skipped).toContainEqual({
      name: 'fc2.weight',
      reason: "'logits' is an output of the model, whose shape must not change",
    });
    // Measured: 38346 → 19740 parameters (every layer loses 30 % of its outputs and of its inputs), file 155 kB → 80.7 kB,
    // top-1 0.9806 → 0.9528.
    const params = countParameters(output);
    expect(params).toBe(output.graph.initializer.reduce((n, t) => n + t.dims.reduce<number>((a, b) => a * Number(b), 1), 0));
    expect(params / 38346).toBeLessThan(0.55);
    expect(statSync(out).size / statSync(DIGITS).size).toBeLessThan(0.55);
    expect(evaluation.accuracy.drop).toBeLessThan(0.05);
    expect(evaluation.latency!.reference.meanMs).toBeGreaterThan(0);
  });

  it('transformer FFN neurons: both MatMuls shrink, attention and residual paths are left alone with reasons', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(
      fixture('charlm', 'model.onnx'),
      path('lm-s30.onnx'),
      [['prune', 'structured:ratio=0.3,target=neurons']],
      lmData,
    );
    const changed = result.passes[0]!.tensors.filter((t) => t.form!.includes('neurons removed'));
    expect(changed).toHaveLength(3);
    for (const c of changed) expect(c.form).toBe('153 of 512 neurons removed (l1 norm)');
    const reasons = result.passes[0]!.skipped.map((s) => s.reason).join('\n');
    expect(reasons).toMatch(/Reshape/);
    expect(reasons).toMatch(/residual/);
    // Measured: perplexity 3.7446 → 4.85 (+30 %) without any fine-tuning; parameters 627k → 509k.
    expect(evaluation.accuracy.drop).toBeLessThan(0.5);
    expect(countParameters(output)).toBeLessThan(0.85 * 627437);
    const inputs = output.graph.input.map((i) => i.name);
    expect(inputs).toEqual(['input_ids']);
    expect(tensorValues(output.graph.initializer[0]!).length).toBeGreaterThan(0);
  });

  it('keeps the model inputs and outputs unchanged (names, types, shapes)', async () => {
    const { output } = await compressAndEvaluate(fixture('mlp', 'model.onnx'), path('mlp-s.onnx'), [['prune', 'structured:ratio=0.5']], {
      data: fixture('mlp', 'test_data_set_0'),
      labels: fixture('mlp', 'labels.txt'),
    });
    const original = readModel(fixture('mlp', 'model.onnx'));
    expect(JSON.stringify(output.graph.input)).toBe(JSON.stringify(original.graph.input));
    expect(JSON.stringify(output.graph.output)).toBe(JSON.stringify(original.graph.output));
  });
});

describe('structured pruning, channel multiples', () => {
  it('multiple=8 keeps a multiple of 8 channels in every pruned layer', async () => {
    const { output, result } = await compressAndEvaluate(
      DIGITS,
      path('cnn-m8.onnx'),
      [['prune', 'structured:ratio=0.3,multiple=8']],
      digitsData,
    );
    for (const t of result.passes[0]!.tensors.filter((x) => x.details?.kept !== undefined)) expect((t.details!.kept as number) % 8).toBe(0);
    expect(output.graph.initializer.find((t) => t.name === 'conv2.weight')!.dims.map(Number)).toEqual([24, 16, 3, 3]);
  });
});

describe('attention-head pruning', () => {
  // Measured on the char LM (3 blocks of 4 heads × 32): removing 1 head per block gives perplexity
  // 3.7446 → 4.07 (+8.7 %) without fine-tuning, 627437 → 577997 parameters, 2.55 → 2.35 MB.
  it('removes whole heads: Q/K/V columns, output-projection rows and the shape constants shrink together', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(
      fixture('charlm', 'model.onnx'),
      path('lm-heads.onnx'),
      [['prune', 'heads:ratio=0.25']],
      lmData,
    );
    expect(result.passes[0]!.notes).toHaveLength(3);
    for (const note of result.passes[0]!.notes) expect(note).toMatch(/^3 projections of 4 heads × 32: kept heads \d, \d, \d$/);
    const dims = (name: string) => output.graph.initializer.find((t) => t.name === name)!.dims.map(Number);
    expect(dims('onnx::MatMul_390')).toEqual([128, 96]);
    expect(dims('blocks.0.q.bias')).toEqual([96]);
    expect(dims('onnx::MatMul_406')).toEqual([96, 128]);
    expect(evaluation.accuracy.drop).toBeGreaterThan(0);
    expect(evaluation.accuracy.drop).toBeLessThan(0.15);
    expect(countParameters(output)).toBe(577997);
  });
});

describe('structured:target=heads', () => {
  it('is the same as --prune heads (the spelling in DESIGN.md)', async () => {
    const { compress } = await import('../../src/pipeline/compress.js');
    const { parseStep } = await import('../../src/pipeline/registry.js');
    const { readFileSync } = await import('node:fs');
    await compress(fixture('charlm', 'model.onnx'), path('h-a.onnx'), { steps: [parseStep('prune', 'heads:ratio=0.25')] });
    await compress(fixture('charlm', 'model.onnx'), path('h-b.onnx'), {
      steps: [parseStep('prune', 'structured:target=heads,ratio=0.25')],
    });
    expect(Buffer.compare(readFileSync(path('h-a.onnx')), readFileSync(path('h-b.onnx')))).toBe(0);
  });
});

describe('N:M selection', () => {
  /** The selection as the pass made it before it ran on kernel threads: group by group through perBlock. */
  function reference(values: Float32Array, dims: number[], axis: number, n: number, m: number): Float32Array {
    const after = values.slice();
    const groups = perBlock(dims, axis, m);
    const buf = new Float32Array(m),
      idx = new Int32Array(m);
    for (let g = 0; g < groups.count; g++) {
      const size = groups.gather(g, values, buf, idx);
      const order = Array.from({ length: size }, (_, j) => j).sort((a, b) => Math.abs(buf[a]!) - Math.abs(buf[b]!) || b - a);
      for (let k = 0; k < size - n; k++) after[idx[order[k]!]!] = 0;
    }
    return after;
  }

  it.each([
    [[64, 24], 0, 2, 4],
    [[24, 64], 1, 2, 4],
    [[6, 8, 3, 3], 1, 1, 4],
    [[96, 20], 0, 3, 8],
    [[2, 32, 5], 1, 5, 16],
  ] as const)(
    'keeps the same weights as a group-by-group selection, ties to the earlier (%j, axis %i, %i:%i)',
    async (dims, axis, n, m) => {
      const { pruneNM, pruneNMScalar } = await import('../../src/kernels/nm-select.js');
      const { weightError } = await import('../../src/kernels/weight-error.js');
      const count = dims.reduce((a, b) => a * b, 1);
      // Few distinct magnitudes, both signs and zeros: plenty of ties inside groups.
      const values = Float32Array.from({ length: count }, (_, i) => (((i * 7919) % 11) - 5) / 4);
      const want = reference(values, [...dims], axis, n, m);
      const error = weightError(values, want);
      const [outer, inner] = [dims.slice(0, axis).reduce((a, b) => a * b, 1), dims.slice(axis + 1).reduce((a, b) => a * b, 1)];
      // The WebAssembly kernel (four columns at a time, then the rest one by one) and the JavaScript.
      for (const got of [pruneNM(values, [...dims], axis, n, m), pruneNMScalar(values, outer, dims[axis]!, inner, n, m)]) {
        expect(Array.from(got.values)).toEqual(Array.from(want));
        expect(got.zeros).toBe(want.filter((x) => x === 0).length);
        expect(got.error.maxAbsError).toBe(error.maxAbsError);
        expect(got.error.relRmsError).toBeCloseTo(error.relRmsError, 12);
      }
    },
  );

  it('gives byte-identical outputs with 1, 2 and 3 threads, eager and lazy reads', async () => {
    for (const read of [undefined, LAZY_READ]) {
      const passes = await expectSameForThreads(fixture('charlm', 'model.onnx'), 'prune', 'nm:n=2,m=4', read);
      expect(passes[0]!.tensors.length).toBeGreaterThan(0);
    }
  });
});

describe('magnitude pruning on worker threads', () => {
  it.each([['magnitude:sparsity=0.5'], ['magnitude:sparsity=0.7,scope=global']])(
    'gives byte-identical outputs with 1 and 2 threads (%s), eager and lazy reads',
    async (spec) => {
      for (const read of [undefined, LAZY_READ]) {
        const passes = await expectSameForThreads(fixture('charlm', 'model.onnx'), 'prune', spec, read);
        expect(passes[0]!.tensors.length).toBeGreaterThan(0);
      }
    },
  );
});
