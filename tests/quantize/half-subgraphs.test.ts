// fp16 (weight-only storage) of weights the plan leaves in float32 because they live in subgraphs:
// ONNX Runtime's CPU provider has no float16 If, so an If's branches compute in float32, and the
// Silero VADs kept their whole network, 1.8–2.3 MB, in float32 under --quantize fp16. Their weights
// — a Constant inside a branch, a branch's initializer, and a main-graph initializer only a branch
// reads — are now stored in float16 and cast back. Checked in ONNX Runtime against the original.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import type { GraphProto, TensorProto } from '../../src/ir/onnx.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { BOOL, graph, graphAttr, input, model, node, save, tensor, tensorAttr, values, vi } from '../convert/helpers.js';
import { cli, cosine, scratch } from '../helpers.js';

const dir = scratch();
const N = 48;

const constant = (t: TensorProto) => node('Constant', [], [t.name!], [tensorAttr('value', t)]);

function ifModel(): string {
  const weight = (name: string, seed: number) => tensor(name, [N, N], Array.from(values(N * N, seed)));
  // then: X·A (A a Constant) · B (B the branch's initializer); else: X·C (C the main graph's, read only here).
  const thenBranch: GraphProto = graph(
    [constant(weight('A', 2)), node('MatMul', ['X', 'A'], ['t1']), node('MatMul', ['t1', 'B'], ['then_out'])],
    [],
    [vi('then_out')],
    [weight('B', 3)],
  );
  const elseBranch: GraphProto = graph([node('MatMul', ['X', 'C'], ['else_out'])], [], [vi('else_out')]);
  const g = graph(
    [node('If', ['cond'], ['Y'], [graphAttr('then_branch', thenBranch), graphAttr('else_branch', elseBranch)])],
    [vi('X', [4, N]), vi('cond', [], BOOL)],
    [vi('Y')],
    [weight('C', 4)],
  );
  return save(join(dir, 'if.onnx'), model(g, 17));
}

describe('fp16 stores the weights inside subgraphs (and those only subgraphs read) in float16', () => {
  it('an If model: ≤ 0.55× the size, both branches within cosine 0.9999 of the original in ONNX Runtime', async () => {
    const original = ifModel();
    const out = join(dir, 'if-fp16.onnx');
    const r = cli(['compress', original, '-o', out, '--quantize', 'fp16', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const changed = (JSON.parse(r.stdout) as { tensors: { name: string; dtypeAfter?: string }[] }).tensors
      .filter((t) => t.dtypeAfter === 'float16')
      .map((t) => t.name)
      .sort();
    expect(changed, r.stdout.slice(0, 3000)).toEqual(['A', 'B', 'C']);
    expect(statSync(out).size).toBeLessThanOrEqual(0.55 * statSync(original).size);
    expect(readModel(out).graph.initializer.find((t) => t.name?.startsWith('C'))?.data_type).toBe(10);
    for (const branch of [1, 0]) {
      const feeds = [input('X', [4, N], 7), { name: 'cond', dtype: BOOL, dims: [], data: Uint8Array.of(branch) }];
      const a = (await run(await createSession(original), feeds))[0]!,
        b = (await run(await createSession(out), feeds))[0]!;
      expect(b.dtype).toBe(1);
      expect(cosine(a.data as Float32Array, b.data as Float32Array)).toBeGreaterThanOrEqual(0.9999);
    }
  });
});
