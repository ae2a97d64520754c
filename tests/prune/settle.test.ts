// A pruning step that is the last writes its dense weights as it goes (model.settle, which an
// external-data output listens to), and holds back only the weights sparse storage may take: the
// 2.64 GB llama-style model's magnitude pruning held all of it before (bench/RESULTS.md).
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import type { TensorProto } from '../../src/ir/onnx.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { fixture } from '../helpers.js';

async function settledBy(spec: string): Promise<{ settled: string[]; pruned: string[]; sparse: string[] }> {
  const model = readModel(fixture('charlm', 'model.onnx'));
  const settled: string[] = [];
  const summaries = await runPipeline(model, [parseStep('prune', spec)], {
    settle: (tensors: TensorProto[]) => settled.push(...tensors.map((t) => t.name ?? '')),
  });
  const pruned = summaries[0]!.tensors.map((t) => t.name);
  const sparse = model.graph.sparse_initializer.map((s) => s.values?.name ?? '');
  return { settled, pruned, sparse };
}

describe('pruning settles the weights that stay dense', () => {
  it('magnitude 50 %: every pruned weight is settled as it is applied, none goes sparse', async () => {
    const { settled, pruned, sparse } = await settledBy('magnitude:sparsity=0.5');
    expect(pruned.length).toBeGreaterThan(0);
    expect(sparse).toEqual([]);
    expect(settled.sort()).toEqual([...pruned].sort());
  });

  it('magnitude 90 %: the weights sparse storage takes are held back, not settled', async () => {
    const { settled, sparse } = await settledBy('magnitude:sparsity=0.9');
    expect(sparse.length).toBeGreaterThan(0);
    for (const name of sparse) expect(settled).not.toContain(name);
  });

  it('storage=dense: every pruned weight is settled, whatever its zeros', async () => {
    const { settled, pruned, sparse } = await settledBy('magnitude:sparsity=0.9,storage=dense');
    expect(sparse).toEqual([]);
    expect(settled.sort()).toEqual([...pruned].sort());
  });
});
