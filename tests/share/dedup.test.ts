import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { DataType } from '../../src/ir/onnx.js';
import { floatValues, makeTensor } from '../../src/ir/tensor.js';
import { inspectModel } from '../../src/report/inspect.js';
import { intsAttribute, makeNode } from '../../src/ir/build.js';
import { expectSameForThreads, fixture, LAZY_READ, scratch } from '../helpers.js';
import { compressAndEvaluate } from '../quantize/helpers.js';
import { bytesOf, expectBitIdentical, save, setFloats } from './helpers.js';

const dir = scratch();
const REPEATED = fixture('repeated', 'model.onnx');
const CHARLM = fixture('charlm', 'model.onnx');
const charlmData = fixture('charlm', 'test_data_set_0');

describe('share dedup', () => {
  it('stores the repeated blocks once: the file shrinks by the duplicate bytes, outputs bit-identical', async () => {
    const out = join(dir, 'repeated-dedup.onnx');
    const { result, evaluation, output } = await compressAndEvaluate(REPEATED, out, [['share', 'dedup']], {
      data: fixture('repeated', 'test_data_set_0'),
    });
    // inspect counts 12 copies of 4 tensors (198912 bytes). Measured: 269675 → 70478 bytes (3.83×);
    // the expected factor is 269675 / (269675 − 198912) = 3.81, plus the copies' protobuf headers.
    const duplicates = inspectModel(readModel(REPEATED)).duplicates;
    expect(duplicates).toEqual({ tensors: 12, groups: 4, bytes: 198912 });
    const saved = bytesOf(REPEATED) - bytesOf(out);
    expect(saved).toBeGreaterThanOrEqual(duplicates.bytes);
    expect(saved).toBeLessThan(duplicates.bytes + 12 * 64);
    expect(bytesOf(REPEATED) / bytesOf(out)).toBeGreaterThan(3.8);
    expect(inspectModel(output).duplicates.tensors).toBe(0);
    const [summary] = result.passes;
    expect(summary!.tensors.map((t) => t.name).sort()).toEqual(
      ['1', '2', '3'].flatMap((b) => ['W1', 'W2', 'b1', 'b2'].map((w) => `block${b}.${w}`)).sort(),
    );
    expect(summary!.tensors.find((t) => t.name === 'block3.W2')).toMatchObject({
      bytesBefore: 32768,
      bytesAfter: 0,
      maxAbsError: 0,
      form: 'shared: reads block0.W2',
    });
    expect(summary!.bytesBefore).toBe(198912);
    expect(output.graph.node.filter((n) => n.input.includes('block0.W1'))).toHaveLength(4);
    expect(evaluation.accuracy.fidelity.logits!.maxAbsError).toBe(0);
    await expectBitIdentical(REPEATED, out, fixture('repeated', 'test_data_set_0'));
  });

  it('removes a tied embedding stored pre-transposed (E_T = Eᵀ becomes Transpose(E)), outputs bit-identical', async () => {
    const input = fixture('repeated', 'tied', 'model.onnx');
    const out = join(dir, 'tied.onnx');
    const { result, output } = await compressAndEvaluate(input, out, [['share', 'dedup']], {
      data: fixture('repeated', 'tied', 'test_data_set_0'),
    });
    // Measured: 6632 → 3466 bytes.
    expect(bytesOf(out)).toBeLessThan(bytesOf(input) - 3200 + 100);
    expect(output.graph.initializer.map((t) => t.name)).toEqual(['E']);
    const transpose = output.graph.node.find((n) => n.op_type === 'Transpose')!;
    expect(transpose.input).toEqual(['E']);
    expect(transpose.output).toEqual(['E_T']);
    expect(result.passes[0]!.tensors).toEqual([
      expect.objectContaining({ name: 'E_T', form: 'Transpose of E', bytesBefore: 3200, bytesAfter: 0 }),
    ]);
    await expectBitIdentical(input, out, fixture('repeated', 'tied', 'test_data_set_0'));
  });

  it('removes a tied embedding stored twice in the same layout (Gather on E, Gemm transB on E_copy), outputs bit-identical', async () => {
    const input = fixture('repeated', 'tied_same', 'model.onnx');
    const out = join(dir, 'tied-same.onnx');
    const { output } = await compressAndEvaluate(input, out, [['share', 'dedup']], {
      data: fixture('repeated', 'tied_same', 'test_data_set_0'),
    });
    // Measured: 6845 → 3620 bytes.
    expect(bytesOf(out)).toBeLessThan(bytesOf(input) - 3200 + 100);
    expect(output.graph.node.find((n) => n.op_type === 'Gemm')!.input[1]).toBe('E');
    expect(output.graph.initializer.some((t) => t.name === 'E_copy')).toBe(false);
    await expectBitIdentical(input, out, fixture('repeated', 'tied_same', 'test_data_set_0'));
  });

  it('builds both kinds of tied embedding into the char LM and removes the copy, perplexity unchanged', async () => {
    // Pre-transposed: the LM head's [128, 94] weight is replaced by tok.weightᵀ (the exporter's
    // constant-folded form of a tied Linear). Same layout: the head reads Transpose(E_copy), E_copy a
    // byte copy of tok.weight (the unfolded form).
    const base = readModel(CHARLM);
    const tok = base.graph.initializer.find((t) => t.name === 'tok.weight')!;
    const E = floatValues(tok);
    const [V, D] = tok.dims.map(Number) as [number, number];
    const ET = new Float32Array(V * D);
    for (let v = 0; v < V; v++) for (let d = 0; d < D; d++) ET[d * V + v] = E[v * D + d]!;
    const head = base.graph.node.find((n) => n.name === '/head/MatMul')!;
    const headWeight = head.input[1]!;
    setFloats(base.graph.initializer.find((t) => t.name === headWeight)!, ET);
    const transposedPath = save(base, join(dir, 'charlm-tied-transposed.onnx'));

    const same = readModel(CHARLM);
    same.graph.initializer = same.graph.initializer.filter((t) => t.name !== headWeight);
    same.graph.initializer.push(
      makeTensor('E_copy', DataType.FLOAT, [V, D], Uint8Array.from(new Uint8Array(E.buffer, E.byteOffset, E.byteLength))),
    );
    const sameHead = same.graph.node.find((n) => n.name === '/head/MatMul')!;
    same.graph.node.splice(
      same.graph.node.indexOf(sameHead),
      0,
      makeNode('Transpose', ['E_copy'], ['E_copy_T'], 'tied/Transpose', [intsAttribute('perm', [1, 0])]),
    );
    sameHead.input[1] = 'E_copy_T';
    const samePath = save(same, join(dir, 'charlm-tied-same.onnx'));

    for (const [input, copy, form] of [
      [transposedPath, headWeight, 'Transpose of tok.weight'],
      [samePath, 'E_copy', 'shared: reads tok.weight'],
    ] as const) {
      const out = input.replace('.onnx', '-dedup.onnx');
      const { result, evaluation } = await compressAndEvaluate(input, out, [['share', 'dedup']], { data: charlmData });
      const row = result.passes[0]!.tensors.find((t) => t.name === copy);
      expect(row, input).toMatchObject({ form, bytesBefore: V * D * 4, bytesAfter: 0 });
      // Measured: 48128 bytes fewer for both (the 94×128 copy); perplexity identical.
      expect(bytesOf(input) - bytesOf(out)).toBeGreaterThanOrEqual(V * D * 4);
      expect(evaluation.accuracy.perplexity!.compressed).toBe(evaluation.accuracy.perplexity!.reference);
      await expectBitIdentical(input, out, charlmData);
    }
  });

  it("merges the char LM's repeated Constant values (81 copies) without changing a bit of the output", async () => {
    const out = join(dir, 'charlm-dedup.onnx');
    const { result } = await compressAndEvaluate(CHARLM, out, [['share', 'dedup']], { data: charlmData });
    // Measured: 81 Constant nodes go (2545539 → 2538212 bytes); no float weight repeats.
    expect(result.passes[0]!.tensors).toHaveLength(81);
    expect(bytesOf(out)).toBeLessThan(bytesOf(CHARLM));
    await expectBitIdentical(CHARLM, out, charlmData);
  });

  it("shares across scopes: a branch's weight and Constant read an equal outer initializer; sibling branches stay apart", async () => {
    const input = fixture('conformance', 'if_subgraph', 'model.onnx');
    const data = join(fixture('conformance', 'if_subgraph'), 'test_data_set_0');
    const base = readModel(input);
    const ifNode = base.graph.node.find((n) => n.op_type === 'If')!;
    const branch = (name: string) => ifNode.attribute.find((a) => a.name === name)!.g!;
    const thenW = branch('then_branch').initializer.find((t) => t.name === 'then_W')!;
    const elseConst = branch('else_branch').node.find((n) => n.op_type === 'Constant')!;
    const elseW = elseConst.attribute[0]!.t!;
    // Siblings only: then_W equals the else branch's Constant; neither can see the other.
    const values = floatValues(thenW);
    setFloats(elseW, Float32Array.from(values));
    const siblings = save(base, join(dir, 'if-siblings.onnx'));
    const s = await compressAndEvaluate(siblings, join(dir, 'if-siblings-dedup.onnx'), [['share', 'dedup']], { data });
    expect(s.result.passes[0]!.tensors).toHaveLength(0);
    // With an equal initializer in the main graph, both branches read it.
    base.graph.initializer.push(
      makeTensor(
        'W_outer',
        DataType.FLOAT,
        thenW.dims.map(Number),
        Uint8Array.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)),
      ),
    );
    const outer = save(base, join(dir, 'if-outer.onnx'));
    const out = join(dir, 'if-outer-dedup.onnx');
    const { result, output } = await compressAndEvaluate(outer, out, [['share', 'dedup']], { data });
    expect(result.passes[0]!.tensors.map((t) => [t.name, t.form]).sort()).toEqual([
      ['else_W', 'shared: reads W_outer'],
      ['then_W', 'shared: reads W_outer'],
    ]);
    const outIf = output.graph.node.find((n) => n.op_type === 'If')!;
    const g = (name: string) => outIf.attribute.find((a) => a.name === name)!.g!;
    expect(g('then_branch').initializer).toHaveLength(0);
    expect(g('else_branch').node.some((n) => n.op_type === 'Constant')).toBe(false);
    expect(g('then_branch').node[0]!.input).toContain('W_outer');
    await expectBitIdentical(outer, out, data);
  });

  it('drops an IR 3 copy from the graph inputs too, and leaves overridable inputs, graph outputs and excluded tensors alone', async () => {
    const ir3 = readModel(fixture('conformance', 'ir3_init_as_inputs', 'model.onnx'));
    const W1 = ir3.graph.initializer.find((t) => t.name === 'W1')!;
    ir3.graph.initializer.push({ ...W1, name: 'W1_copy' });
    ir3.graph.input.push({ ...ir3.graph.input.find((i) => i.name === 'W1')!, name: 'W1_copy' });
    ir3.graph.node.find((n) => n.name === 'fc1/MatMul')!.input[1] = 'W1_copy';
    const ir3Path = save(ir3, join(dir, 'ir3-copy.onnx'));
    const out = join(dir, 'ir3-copy-dedup.onnx');
    const data = fixture('conformance', 'ir3_init_as_inputs', 'test_data_set_0');
    const { result, output } = await compressAndEvaluate(ir3Path, out, [['share', 'dedup']], { data });
    expect(result.passes[0]!.tensors.map((t) => t.name)).toEqual(['W1_copy']);
    expect(output.graph.input.map((i) => i.name)).not.toContain('W1_copy');
    await expectBitIdentical(ir3Path, out, data);

    const model = readModel(REPEATED);
    model.graph.input.push({
      name: 'block1.W1',
      type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_value: 64 }, { dim_value: 128 }] } } },
      metadata_props: [],
    });
    model.graph.output.push({
      name: 'block2.b1',
      type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_value: 128 }] } } },
      metadata_props: [],
    });
    const path = save(model, join(dir, 'overridable.onnx'));
    const r = await compressAndEvaluate(path, join(dir, 'overridable-dedup.onnx'), [['share', 'dedup:exclude=block3.*']], {
      data: fixture('repeated', 'test_data_set_0'),
    });
    const skipped = r.result.passes[0]!.skipped;
    expect(skipped).toContainEqual({ name: 'block1.W1', reason: 'equals block0.W1 but is an overridable graph input (IR ≥ 4)' });
    expect(skipped).toContainEqual({ name: 'block2.b1', reason: 'equals block0.b1 but is a graph output' });
    expect(skipped).toContainEqual({ name: 'block3.W2', reason: 'equals block0.W2 but matches exclude pattern' });
    expect(r.result.passes[0]!.tensors.map((t) => t.name).sort()).toEqual([
      'block1.W2',
      'block1.b1',
      'block1.b2',
      'block2.W1',
      'block2.W2',
      'block2.b2',
    ]);
    expect(r.evaluation.accuracy.fidelity.logits!.maxAbsError).toBe(0);
  });

  it('writes byte-identical output for the same input', async () => {
    const a = join(dir, 'same-a.onnx'),
      b = join(dir, 'same-b.onnx');
    await compressAndEvaluate(REPEATED, a, [['share', 'dedup']], { data: fixture('repeated', 'test_data_set_0') });
    await compressAndEvaluate(REPEATED, b, [['share', 'dedup']], { data: fixture('repeated', 'test_data_set_0') });
    expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
  });
});

describe('dedup fingerprints on worker threads', () => {
  it('gives byte-identical outputs with 1 and 2 threads, eager and lazy reads', async () => {
    // The repeated-blocks fixture has exact copies.
    for (const read of [undefined, LAZY_READ]) {
      const passes = await expectSameForThreads(fixture('repeated', 'model.onnx'), 'share', 'dedup', read);
      expect(passes[0]!.tensors.length).toBeGreaterThan(0);
    }
  });
});
