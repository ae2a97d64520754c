// Clustering float16 weights (issue 16 item 2): centroids rounded to float16 and stored in a float16
// codebook, so Gather makes float16 values for the float16 model; the error is measured with the
// rounded centroids, and the model runs in ONNX Runtime as close as the float32 model clustered.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { DataType } from '../../src/ir/onnx.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();

interface Report {
  tensors: { name: string; dtypeBefore: string; relRmsError?: number }[];
  accuracy: { fidelity: Record<string, { cosine: number }> };
}

function cluster(input: string, out: string): Report {
  const r = cli([
    'compress',
    input,
    '-o',
    out,
    '--force',
    '--share',
    'cluster:min-size=16',
    '--eval',
    '--data',
    fixture('repeated', 'test_data_set_0'),
    '--runs',
    '0',
    '--json',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

describe('cluster on float16 weights', () => {
  it('float16 codebooks read by Gather; output cosine within 0.01 of clustering the float32 model', () => {
    const half = join(dir, 'repeated-fp16.onnx');
    expect(cli(['compress', fixture('repeated', 'model.onnx'), '-o', half, '--quantize', 'fp16:check=none']).code).toBe(0);
    const fromHalf = cluster(half, join(dir, 'repeated-fp16-k16.onnx'));
    const fromFloat = cluster(fixture('repeated', 'model.onnx'), join(dir, 'repeated-k16.onnx'));
    const clustered = fromHalf.tensors.filter((t) => t.relRmsError !== undefined && t.relRmsError > 0);
    expect(clustered.length).toBeGreaterThan(0);
    expect(clustered.every((t) => t.dtypeBefore === 'float16')).toBe(true);
    const m = readModel(join(dir, 'repeated-fp16-k16.onnx'));
    const books = m.graph.node.filter((n) => n.op_type === 'Gather').map((n) => m.graph.initializer.find((t) => t.name === n.input[0]));
    expect(books.length).toBeGreaterThan(0);
    expect(books.every((t) => t?.data_type === DataType.FLOAT16)).toBe(true);
    const cos = (r: Report) => Math.min(...Object.values(r.accuracy.fidelity).map((f) => f.cosine));
    expect(Math.abs(cos(fromHalf) - cos(fromFloat))).toBeLessThan(0.01);
  });
});
