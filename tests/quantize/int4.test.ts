import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { readTestDataSet } from '../../src/io/testdata.js';
import { FidelityAccumulator } from '../../src/report/metrics.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { expectSameForThreads, fixture, LAZY_READ, scratch } from '../helpers.js';
import { compressAndEvaluate } from './helpers.js';

const dir = scratch();
const CHARLM = fixture('charlm', 'model.onnx');
const lmData = { data: fixture('charlm', 'test_data_set_0') };

/** The largest difference between two LM variants' logits on the fixture's test set, in ONNX Runtime. */
async function largestLogitDifference(a: string, b: string): Promise<number> {
  const inputs = readTestDataSet(fixture('charlm', 'test_data_set_0')).inputs.map((x) => ({ ...x, name: 'input_ids' }));
  const [x] = await run(await createSession(a), inputs);
  const [y] = await run(await createSession(b), inputs);
  const f = new FidelityAccumulator();
  f.add(x!.data as Float32Array, y!.data as Float32Array);
  return f.result().maxAbsError;
}

describe('quantize int4 (blockwise)', () => {
  // Measured on the character LM (512 held-out tokens, reference perplexity 3.7446):
  // with the default clipping search, block 32 → +1.7 % (MatMulNBits and DequantizeLinear alike), block 128
  // → +2.3 %; asymmetric block 32 and 64 stay under 4 %. Bounds leave room.
  it.each([
    ['int4:block=32', 0.04, 'MatMulNBits'],
    ['int4:block=32,format=dq', 0.04, 'DequantizeLinear'],
    ['int4:block=128', 0.1, 'MatMulNBits'],
    ['int4:block=128,format=dq', 0.1, 'DequantizeLinear'],
    ['int4:block=32,symmetric=false', 0.04, 'MatMulNBits'],
    ['int4:block=64,symmetric=false,format=dq', 0.06, 'DequantizeLinear'],
  ])('%s on the LM: runs in ONNX Runtime, perplexity within %s, over 5× smaller', async (spec, maxIncrease, op) => {
    const path = join(dir, `lm-${spec.replace(/[:=,]/g, '_')}.onnx`);
    const { result, evaluation, output } = await compressAndEvaluate(CHARLM, path, [['quantize', spec]], lmData);
    expect(evaluation.accuracy.metric).toBe('perplexity');
    expect(evaluation.accuracy.drop).toBeGreaterThanOrEqual(0);
    expect(evaluation.accuracy.drop).toBeLessThan(maxIncrease);
    expect(statSync(path).size).toBeLessThan(statSync(CHARLM).size / 5);
    expect(output.graph.node.some((n) => n.op_type === op)).toBe(true);
    expect(result.passes[0]!.tensors.length).toBeGreaterThanOrEqual(19);
  });

  // ONNX Runtime fuses DequantizeLinear+MatMul into MatMulNBits with accuracy level 4 itself: with the same
  // level, our packed MatMulNBits must give exactly the same outputs as our standard-form model.
  it('MatMulNBits packing is bit-exact against the standard DequantizeLinear form', async () => {
    const a = join(dir, 'nbits.onnx'),
      b = join(dir, 'dq.onnx');
    await compressAndEvaluate(CHARLM, a, [['quantize', 'int4:block=32,format=matmulnbits,ops=MatMul,accuracy-level=4']], lmData);
    await compressAndEvaluate(CHARLM, b, [['quantize', 'int4:block=32,format=dq,ops=MatMul']], lmData);
    expect(await largestLogitDifference(a, b)).toBe(0);
  });

  // GatherBlockQuantized dequantizes only the gathered rows, with the same codes and scales as the
  // DequantizeLinear form of the table: the LM's outputs must be exactly those of that form.
  it.each([['true'], ['false']])(
    'gather=blockquantized (symmetric=%s): GatherBlockQuantized, outputs exactly as the DequantizeLinear form',
    async (symmetric) => {
      const a = join(dir, `gbq-${symmetric}.onnx`),
        b = join(dir, `gdq-${symmetric}.onnx`);
      const { result, output } = await compressAndEvaluate(
        CHARLM,
        a,
        [['quantize', `int4:gather=blockquantized,symmetric=${symmetric}`]],
        lmData,
      );
      await compressAndEvaluate(CHARLM, b, [['quantize', `int4:gather=dq,symmetric=${symmetric}`]], lmData);
      const gathers = output.graph.node.filter((n) => n.op_type === 'GatherBlockQuantized');
      expect(gathers.length).toBe(2);
      const gathersOf = (m: typeof output) => m.graph.node.filter((n) => n.op_type === 'Gather').length;
      expect(gathersOf(output)).toBe(gathersOf(readModel(b)) - 2);
      expect(output.graph.node.some((n) => n.op_type === 'DequantizeLinear')).toBe(false);
      expect(result.passes[0]!.tensors.filter((t) => t.form.startsWith('GatherBlockQuantized')).length).toBe(2);
      // The uint8 form needs no opset 21: the default opset stays where the LM was exported.
      expect(output.proto.opset_import.find((o) => !o.domain)?.version).toBe(
        readModel(CHARLM).proto.opset_import.find((o) => !o.domain)?.version,
      );
      expect(await largestLogitDifference(a, b)).toBe(0);
    },
  );

  it('the clipping search lowers the weight error against min/max scales', async () => {
    const { result } = await compressAndEvaluate(CHARLM, join(dir, 'search.onnx'), [['quantize', 'int4:block=128']], lmData);
    for (const t of result.passes[0]!.tensors) expect(t.relRmsError!).toBeLessThanOrEqual(t.details!.relRmsErrorMinMax as number);
    const { evaluation: plain } = await compressAndEvaluate(
      CHARLM,
      join(dir, 'plain.onnx'),
      [['quantize', 'int4:block=128,search=none']],
      lmData,
    );
    const { evaluation: searched } = await compressAndEvaluate(
      CHARLM,
      join(dir, 'searched.onnx'),
      [['quantize', 'int4:block=128,search=mse']],
      lmData,
    );
    expect(searched.accuracy.compressed).toBeLessThan(plain.accuracy.compressed);
  });

  it('quantizes Gemm and Conv weights of the CNN as blocked DequantizeLinear (opset raised to 21)', async () => {
    const { result, evaluation, output } = await compressAndEvaluate(
      fixture('digits', 'model.onnx'),
      join(dir, 'digits-q4.onnx'),
      [['quantize', 'int4:block=16']],
      { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') },
    );
    expect(result.passes[0]!.notes.join()).toMatch(/opset raised from 17 to 21/);
    expect(output.proto.opset_import.find((o) => !o.domain)?.version).toBe(21);
    expect(evaluation.accuracy.drop).toBeLessThanOrEqual(0.02);
  });
});

describe('parallel kernels', () => {
  it("reject a job that fails on a worker with the error's own class, and run the others", async () => {
    const { KernelPool } = await import('../../src/kernels/pool.js');
    const { InputError } = await import('../../src/errors.js');
    const { writeFileSync } = await import('node:fs');
    const file = join(dir, 'short.bin');
    writeFileSync(file, Buffer.alloc(1 << 16));
    const pool = new KernelPool(2);
    // Time for the worker to start, so that it is there to take the largest job first.
    await new Promise((resolve) => setTimeout(resolve, 500));
    try {
      const job = (length: number) =>
        pool.run({
          values: { file, offset: 0, length },
          groups: { kind: 'tensor' as const },
          options: { range: { min: -128, max: 127 }, symmetric: true },
        });
      // The failing job is the largest, so the worker takes it first; this thread takes the small ones.
      const failing = job(1 << 22);
      const others = Array.from({ length: 200 }, () => job(4096));
      await expect(failing).rejects.toBeInstanceOf(InputError);
      await expect(failing).rejects.toThrow(/ended before byte/);
      for (const r of await Promise.all(others)) expect(r.codes.length).toBe(4096);
      // The worker is still there for more.
      expect((await job(4096)).codes.length).toBe(4096);
    } finally {
      await pool.close();
    }
  });

  it.each([['int4:block=32'], ['int8'], ['int8:mode=weight'], ['int4:block=64,format=dq,symmetric=false']])(
    'give byte-identical outputs with 1 and 2 threads (%s), eager and lazy reads',
    async (spec) => {
      for (const read of [undefined, LAZY_READ]) await expectSameForThreads(CHARLM, 'quantize', spec, read);
    },
  );
});
