import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { floatValues } from '../../src/ir/tensor.js';
import { fixture, scratch } from '../helpers.js';
import { compressAndEvaluate } from '../quantize/helpers.js';
import { bytesOf, expectBitIdentical, noise, rms, save, setFloats } from './helpers.js';

const dir = scratch();
const REPEATED = fixture('repeated', 'model.onnx');
const repeatedData = { data: fixture('repeated', 'test_data_set_0') };
const CHARLM = fixture('charlm', 'model.onnx');
const charlmData = { data: fixture('charlm', 'test_data_set_0') };

/**
 * The repeated-blocks fixture with blocks 1–3's W1 and W2 made near (not exact) copies of block 0's:
 * noise of `relative` × the weight's RMS added. `zeroEvery` zeroes the same positions in every copy
 * first (as pruning with one mask would).
 */
function nearCopies(relative: number, name: string, zeroEvery = 0): string {
  const model = readModel(REPEATED);
  const init = (n: string) => model.graph.initializer.find((t) => t.name === n)!;
  for (const w of ['W1', 'W2']) {
    const base = Float32Array.from(floatValues(init(`block0.${w}`)));
    if (zeroEvery) for (let i = 0; i < base.length; i += zeroEvery) base[i] = 0;
    setFloats(init(`block0.${w}`), base);
    const scale = relative * rms(base);
    for (let b = 1; b < 4; b++) {
      const n = noise(base.length, 100 * b + (w === 'W1' ? 1 : 2));
      setFloats(
        init(`block${b}.${w}`),
        base.map((x, i) => (x === 0 ? 0 : x + scale * n[i]!)),
      );
    }
  }
  return save(model, join(dir, name));
}

describe('share near', () => {
  it("shares near-duplicate blocks within the tolerance and reports each member's error", async () => {
    const input = nearCopies(0.002, 'near-0.002.onnx');
    const out = join(dir, 'near-0.002-shared.onnx');
    const { result, evaluation, output } = await compressAndEvaluate(input, out, [['share', 'near:tolerance=0.01']], repeatedData);
    const [summary] = result.passes;
    // Two groups of four (every block's W1, every block's W2); the biases are below min-size 256.
    // Measured: 269675 → 72981 bytes (3.70×); member errors 0.0009–0.0017; output cosine 0.9999995.
    const groups = new Set(summary!.tensors.map((t) => t.details!.group));
    expect(groups.size).toBe(2);
    expect(summary!.tensors).toHaveLength(8);
    for (const t of summary!.tensors) {
      expect(t.relRmsError).toBeGreaterThan(0);
      expect(t.relRmsError).toBeLessThan(0.002);
      expect(t.details!.kind).toBe('mean');
    }
    expect(summary!.notes.filter((n) => n.startsWith('group '))).toHaveLength(2);
    expect(summary!.notes[1]).toMatch(
      /^group 1 \(64×128 matmul:block#\/fc#\/MatMul\): mean shared by 4; relative error block0\.W1 0\.000\d, block1\.W1 0\.00\d\d/,
    );
    expect(bytesOf(out)).toBeLessThan(bytesOf(input) - 6 * 32768 + 1000);
    expect(output.graph.initializer.filter((t) => t.dims.length === 2)).toHaveLength(3);
    expect(evaluation.accuracy.fidelity.logits!.cosine).toBeGreaterThan(0.99999);
    // Rows add up: every member's bytes before, the shared tensors' bytes after.
    expect(summary!.bytesBefore).toBe(8 * 32768);
    expect(summary!.bytesAfter).toBe(2 * 32768);

    // Below the copies' differences, nothing is shared, and the notes say how close they came.
    const tight = await compressAndEvaluate(input, join(dir, 'near-tight.onnx'), [['share', 'near:tolerance=0.0005']], repeatedData);
    expect(tight.result.passes[0]!.tensors).toHaveLength(0);
    expect(tight.result.passes[0]!.notes.join('\n')).toMatch(
      /64×128 matmul:block#\/fc#\/MatMul: 4 tensors, none shared \(the closest pair would get a relative error of 0\.00\d+, above the tolerance 0\.0005\)/,
    );
  });

  it("keeps an exact copy's member as the shared tensor, so the outputs stay bit-identical", async () => {
    const out = join(dir, 'near-exact.onnx');
    const { result } = await compressAndEvaluate(REPEATED, out, [['share', 'near']], repeatedData);
    for (const t of result.passes[0]!.tensors) {
      expect(t.details).toMatchObject({ kind: 'member' });
      expect(t.maxAbsError).toBe(0);
    }
    expect(result.passes[0]!.tensors.map((t) => t.details!.representative)).toContain('block0.W1');
    await expectBitIdentical(REPEATED, out, repeatedData.data);
  });

  it('representative=member keeps the member with least error; representative=mean the mean', async () => {
    const input = nearCopies(0.002, 'near-rep.onnx');
    const member = await compressAndEvaluate(
      input,
      join(dir, 'near-member.onnx'),
      [['share', 'near:tolerance=0.01,representative=member']],
      repeatedData,
    );
    const rows = member.result.passes[0]!.tensors;
    expect(rows.every((t) => t.details!.kind === 'member')).toBe(true);
    expect(rows.filter((t) => t.relRmsError === 0)).toHaveLength(2);
    // The mean spreads the error: its sum of squares is smaller, which is why 'best' picks it.
    const mean = await compressAndEvaluate(
      input,
      join(dir, 'near-mean.onnx'),
      [['share', 'near:tolerance=0.01,representative=mean']],
      repeatedData,
    );
    const sumSq = (r: typeof rows) => r.reduce((s, t) => s + t.relRmsError! ** 2, 0);
    expect(sumSq(mean.result.passes[0]!.tensors)).toBeLessThan(sumSq(rows));
  });

  it('keeps pruned zeros: positions zero in the members stay zero in the shared mean', async () => {
    const input = nearCopies(0.002, 'near-pruned.onnx', 2);
    const { result, output } = await compressAndEvaluate(
      input,
      join(dir, 'near-pruned-shared.onnx'),
      [['share', 'near:tolerance=0.01,representative=mean']],
      repeatedData,
    );
    const shared = output.graph.initializer.find((t) => t.name === 'block0.W1_shared')!;
    const values = floatValues(shared);
    for (let i = 0; i < values.length; i += 2) expect(values[i]).toBe(0);
    for (const t of result.passes[0]!.tensors) expect(t.sparsity).toBeGreaterThanOrEqual(0.5);
  });

  // The char LM's three blocks were trained independently: same-role weights differ by about √2 of
  // their norm (uncorrelated), so no tolerance below ~0.69 shares anything. Measured on the 512
  // held-out tokens (reference perplexity 3.7446):
  //   tolerance 0.5   nothing shared                         2545539 bytes, perplexity 3.7446
  //   tolerance 0.72  5 pairs (mean), errors 0.67–0.71       2021187 bytes, perplexity 15.70
  //   tolerance 0.9   6 triples (mean), errors 0.77–0.87      972437 bytes, perplexity 66.83
  //   count=1         the same 6 triples as tolerance 0.9
  it.each([
    ['near:tolerance=0.5', 0, 0, 2545539, [3.7445, 3.7447]],
    ['near:tolerance=0.72', 5, 10, 2021187, [12, 20]],
    ['near:tolerance=0.9', 6, 18, 972437, [50, 85]],
    ['near:count=1', 6, 18, 972437, [50, 85]],
  ] as const)('char LM, %s: groups, size and perplexity as measured', async (spec, groups, tensors, bytes, [low, high]) => {
    const out = join(dir, `charlm-${spec.replace(/[:=,.]/g, '_')}.onnx`);
    const { result, evaluation } = await compressAndEvaluate(CHARLM, out, [['share', spec]], charlmData);
    const rows = result.passes[0]!.tensors;
    expect(new Set(rows.map((t) => t.details!.group)).size).toBe(groups);
    expect(rows).toHaveLength(tensors);
    expect(Math.abs(bytesOf(out) - bytes)).toBeLessThan(bytes * 0.01);
    expect(evaluation.accuracy.metric).toBe('perplexity');
    expect(evaluation.accuracy.compressed).toBeGreaterThanOrEqual(low);
    expect(evaluation.accuracy.compressed).toBeLessThanOrEqual(high);
    if (spec.startsWith('near:tolerance')) {
      const tolerance = Number(spec.split('=')[1]);
      for (const t of rows) expect(t.relRmsError).toBeLessThanOrEqual(tolerance);
    }
  });
});
