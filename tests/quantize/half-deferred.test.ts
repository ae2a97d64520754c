// fp16/bf16 weights still in the input file are converted as the output is written, on every
// thread (kernels/half-file.ts, kernels/half-fill.ts): the output must be the one converting every
// weight in the pass gives, byte for byte, with the same error figures; a weight whose values turn
// out not to fit float16 makes compress() run again converting first, so that it keeps float32.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { DataType } from '../../src/ir/onnx.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { compress, type CompressOptions, type CompressResult } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, model, node, save, values, vi } from '../convert/helpers.js';
import { cosine, leftoverTemps, scratch } from '../helpers.js';

const dir = scratch();
// W1 spans two of the fill's 4 MB pieces.
const K = 1100,
  N = 1000,
  M = 8;

function twoLayers(name: string, large = 0): string {
  const w1 = values(K * N, 3).map((v) => v * 0.03);
  const w2 = values(N * M, 5).map((v) => v * 0.05);
  if (large) w2[17] = large;
  const t = (n: string, dims: number[], v: Float32Array) => makeTensor(n, DataType.FLOAT, dims, new Uint8Array(v.buffer));
  const g = graph(
    [node('MatMul', ['x', 'W1'], ['h']), node('Relu', ['h'], ['r']), node('MatMul', ['r', 'W2'], ['y'])],
    [vi('x', [1, K])],
    [vi('y', [1, M])],
    [t('W1', [K, N], w1), t('W2', [N, M], w2)],
  );
  return save(join(dir, `${name}.onnx`), model(g, 17));
}

/** compress with every weight of 1 kB or more left in the file, as a large model's are. */
async function run16(input: string, out: string, spec: string, extra: Partial<CompressOptions> = {}): Promise<CompressResult> {
  return compress(input, out, {
    steps: [parseStep('quantize', spec)],
    read: { lazyFileBytes: 0, lazyTensorBytes: 1024 },
    threads: 2,
    ...extra,
  });
}

const rowsOf = (r: CompressResult) =>
  new Map(r.passes[0]!.tensors.map((t) => [t.name, { maxAbsError: t.maxAbsError, relRmsError: t.relRmsError }]));

async function outputOf(path: string): Promise<Float32Array> {
  const session = await createSession(path);
  const x = values(K, 9);
  const [y] = await run(session, [{ name: 'x', dtype: DataType.FLOAT, dims: [1, K], data: x }]);
  return y!.data as Float32Array;
}

describe('half precision converted as it is written', () => {
  it.each(['fp16', 'bf16'])(
    '%s: the same bytes and error figures as converting in the pass; runs in ONNX Runtime within cosine 0.9999',
    async (spec) => {
      const input = twoLayers(`plain-${spec}`);
      const deferred = await run16(input, join(dir, `deferred-${spec}.onnx`), `${spec}:check=none`);
      const first = await run16(input, join(dir, `first-${spec}.onnx`), `${spec}:check=none`, { deferConversions: false });
      expect(readFileSync(deferred.output.path).equals(readFileSync(first.output.path))).toBe(true);
      const a = rowsOf(deferred),
        b = rowsOf(first);
      expect([...a.keys()].sort()).toEqual(['W1', 'W2']);
      for (const [name, row] of a) {
        expect(row.maxAbsError).toBe(b.get(name)!.maxAbsError);
        expect(row.relRmsError! / b.get(name)!.relRmsError! - 1).toBeLessThan(1e-6);
        expect(row.relRmsError).toBeGreaterThan(0);
      }
      expect(statSync(deferred.output.path).size / statSync(input).size).toBeLessThan(0.51);
      expect(cosine(await outputOf(deferred.output.path), await outputOf(input))).toBeGreaterThanOrEqual(0.9999);
      expect(leftoverTemps(dir)).toEqual([]);
    },
  );

  it('with an external data file: the same .onnx and .data as converting in the pass', async () => {
    const input = twoLayers('external');
    const outA = join(dir, 'ext-deferred', 'm.onnx');
    const outB = join(dir, 'ext-first', 'm.onnx');
    const write = { externalData: true as const };
    await run16(input, outA, 'fp16:check=none', { write, createOutputFolder: true });
    await run16(input, outB, 'fp16:check=none', { write, createOutputFolder: true, deferConversions: false });
    for (const f of ['m.onnx', 'm.onnx.data'])
      expect(readFileSync(join(outA, '..', f)).equals(readFileSync(join(outB, '..', f)))).toBe(true);
    expect(readdirSync(join(outA, '..')).sort()).toEqual(['m.onnx', 'm.onnx.data']);
    expect(cosine(await outputOf(outA), await outputOf(input))).toBeGreaterThanOrEqual(0.9999);
  });

  it('a weight beyond float16’s range, found only as it is written: the run starts again and keeps it float32, said why', async () => {
    const input = twoLayers('large', 1e6);
    const out = join(dir, 'large-deferred.onnx');
    const r = await run16(input, out, 'fp16:check=none');
    const first = await run16(input, join(dir, 'large-first.onnx'), 'fp16:check=none', { deferConversions: false });
    expect(readFileSync(out).equals(readFileSync(first.output.path))).toBe(true);
    const types = new Map(readModel(out).graph.initializer.map((t) => [t.name, t.data_type]));
    expect(types.get('W1')).toBe(DataType.FLOAT16);
    expect(types.get('W2')).toBe(DataType.FLOAT);
    expect(r.passes[0]!.skipped.map((s) => s.reason).join('\n')).toMatch(/'W2' holds values up to 1000000, beyond float16's range/);
    expect(leftoverTemps(dir)).toEqual([]);
    // The output is right: the large weight kept its value.
    const y = await outputOf(out),
      reference = await outputOf(input);
    expect(y.every(Number.isFinite)).toBe(true);
    expect(cosine(y, reference)).toBeGreaterThanOrEqual(0.9999);
  });
});
