import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { floatValues } from '../../src/ir/tensor.js';
import { fixture, scratch } from '../helpers.js';
import { compressAndEvaluate, dequantized, dequantizedInteger } from '../quantize/helpers.js';
import { bytesOf, expectBitIdentical, save, setFloats } from './helpers.js';

const dir = scratch();
const REPEATED = fixture('repeated', 'model.onnx');
const data = { data: fixture('repeated', 'test_data_set_0') };
const int8Codes = (model: ReturnType<typeof readModel>) => model.graph.initializer.filter((t) => t.name?.endsWith('_quantized'));

describe('sharing composes with the other passes', () => {
  // Measured on the repeated-blocks model: dedup then int8 and int8 then dedup both write 20992
  // bytes (from 269675, 12.8×), with three DequantizeLinear nodes (W1, W2, the head); cosine 0.99993.
  it.each([
    [
      ['share', 'dedup'],
      ['quantize', 'int8:mode=weight'],
    ],
    [
      ['quantize', 'int8:mode=weight'],
      ['share', 'dedup'],
    ],
  ] as [string, string][][])('%s then %s: each shared tensor is quantized once and stored once', async (first, second) => {
    const out = join(dir, `${first[1]}-${second[1]}.onnx`.replace(/[:=]/g, '_'));
    const { result, evaluation, output } = await compressAndEvaluate(REPEATED, out, [first, second], data);
    expect(output.graph.node.filter((n) => n.op_type === 'DequantizeLinear')).toHaveLength(3);
    expect(int8Codes(output)).toHaveLength(3);
    expect(bytesOf(out)).toBeLessThan(21500);
    expect(evaluation.accuracy.fidelity.logits!.cosine).toBeGreaterThan(0.9999);
    const quantize = result.passes.find((p) => p.pass === 'quantize')!;
    if (first[0] === 'share') expect(quantize.tensors.map((t) => t.name).sort()).toEqual(['block0.W1', 'block0.W2', 'head.W']);
    else expect(result.passes[1]!.notes.join(' ')).toMatch(/identical nodes computing from constants merged/);
  });

  // The default form computes the nine MatMuls in integers (five nodes each instead of one DequantizeLinear
  // per weight). Measured: both orders write 24463 bytes, cosine 0.99989, three sets of codes.
  it.each([
    [
      ['share', 'dedup'],
      ['quantize', 'int8'],
    ],
    [
      ['quantize', 'int8'],
      ['share', 'dedup'],
    ],
  ] as [string, string][][])('%s then %s (default form): each shared tensor is quantized once and stored once', async (first, second) => {
    const out = join(dir, `${first[1]}-${second[1]}-auto.onnx`);
    const { evaluation, output } = await compressAndEvaluate(REPEATED, out, [first, second], data);
    const codes = int8Codes(output)
      .map((t) => t.name)
      .sort();
    expect(codes).toEqual(['block0.W1_quantized', 'block0.W2_quantized', 'head.W_quantized']);
    const read = output.graph.node.filter((n) => n.op_type === 'MatMulInteger').map((n) => n.input[1]);
    expect(read).toHaveLength(9);
    expect(new Set(read)).toEqual(new Set(codes));
    expect(bytesOf(out)).toBeLessThan(25000);
    expect(evaluation.accuracy.fidelity.logits!.cosine).toBeGreaterThan(0.9998);
  });

  it('near-duplicates shared before int8 are quantized once', async () => {
    const model = readModel(REPEATED);
    const w = model.graph.initializer.find((t) => t.name === 'block2.W1')!;
    setFloats(
      w,
      floatValues(w).map((x, i) => x * (1 + (i % 7 === 0 ? 1e-3 : 0))),
    );
    const input = save(model, join(dir, 'one-near.onnx'));
    const { result, output } = await compressAndEvaluate(
      input,
      join(dir, 'one-near-q.onnx'),
      [
        ['share', 'near:tolerance=0.01'],
        ['quantize', 'int8:mode=weight'],
      ],
      data,
    );
    expect(result.passes[0]!.tensors.filter((t) => t.name.endsWith('.W1'))).toHaveLength(4);
    const dq = output.graph.node.filter((n) => n.op_type === 'DequantizeLinear');
    expect(dq.map((n) => n.output[0]).sort()).toEqual(['block0.W1_shared', 'block0.W2', 'head.W']);
  });

  it('pruned zeros stay zero through dedup, and through dedup then int8', async () => {
    const model = readModel(REPEATED);
    for (let b = 0; b < 4; b++) {
      const w = model.graph.initializer.find((t) => t.name === `block${b}.W1`)!;
      setFloats(
        w,
        floatValues(w).map((x, i) => (i % 2 === 0 ? 0 : x)),
      );
    }
    const pruned = save(model, join(dir, 'pruned.onnx'));
    const deduped = join(dir, 'pruned-dedup.onnx');
    const d = await compressAndEvaluate(pruned, deduped, [['share', 'dedup']], data);
    const kept = floatValues(d.output.graph.initializer.find((t) => t.name === 'block0.W1')!);
    for (let i = 0; i < kept.length; i += 2) expect(kept[i]).toBe(0);
    await expectBitIdentical(pruned, deduped, data.data);
    const q = await compressAndEvaluate(
      pruned,
      join(dir, 'pruned-dedup-q.onnx'),
      [
        ['share', 'dedup'],
        ['quantize', 'int8:mode=weight'],
      ],
      data,
    );
    const values = dequantized(q.output, 'block0.W1');
    for (let i = 0; i < values.length; i += 2) expect(values[i]).toBe(0);
    // The default form: the MatMul's integer codes, stored [K, N] as the weight was.
    const a = await compressAndEvaluate(
      pruned,
      join(dir, 'pruned-dedup-auto.onnx'),
      [
        ['share', 'dedup'],
        ['quantize', 'int8'],
      ],
      data,
    );
    const integer = dequantizedInteger(a.output, 'block0.W1');
    for (let i = 0; i < integer.length; i += 2) expect(integer[i]).toBe(0);
  });

  it('clustered weights are not quantized again; dedup after clustering stores identical codebooks once', async () => {
    const c = await compressAndEvaluate(
      fixture('digits', 'model.onnx'),
      join(dir, 'digits-c-q.onnx'),
      [
        ['share', 'cluster:k=16'],
        ['quantize', 'int8'],
      ],
      { data: fixture('digits', 'test_data_set_0'), labels: fixture('digits', 'labels.txt') },
    );
    expect(c.result.passes[1]!.tensors).toHaveLength(0);
    expect(c.evaluation.accuracy.drop).toBeLessThanOrEqual(0.003);
    // Repeated blocks cluster to identical codes and codebooks: 9 Gather chains become 3.
    // Measured: 269675 → 40431 bytes after cluster:k=16, → 11669 after dedup (outputs unchanged by dedup).
    const clustered = join(dir, 'repeated-c.onnx'),
      both = join(dir, 'repeated-c-d.onnx');
    await compressAndEvaluate(REPEATED, clustered, [['share', 'cluster:k=16']], data);
    const r = await compressAndEvaluate(
      REPEATED,
      both,
      [
        ['share', 'cluster:k=16'],
        ['share', 'dedup'],
      ],
      data,
    );
    expect(r.output.graph.node.filter((n) => n.op_type === 'Gather')).toHaveLength(3);
    expect(r.output.graph.node.filter((n) => n.op_type === 'Cast')).toHaveLength(3);
    expect(bytesOf(both)).toBeLessThan(bytesOf(clustered) / 2);
    await expectBitIdentical(clustered, both, data.data);
  });
});
