// Pruning float16 weights (issue 16 item 2): the smallest values become zero and the rest keep their
// exact bits, in the weight's own type; the model runs in ONNX Runtime. (bfloat16 weights take the
// same path, but ONNX Runtime's CPU provider runs no bfloat16 Gemm to check the result with.)
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { DataType } from '../../src/ir/onnx.js';
import { tensorValues } from '../../src/ir/tensor.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();

describe.each([['fp16', DataType.FLOAT16]] as const)('%s weights', (spec, dtype) => {
  const half = join(dir, `mlp-${spec}.onnx`);

  it.each(['magnitude:sparsity=0.5', 'nm'])('%s: half the values zero, the others their own bits, the type kept', (prune) => {
    expect(cli(['compress', fixture('mlp', 'model.onnx'), '-o', half, '--force', '--quantize', `${spec}:check=none`]).code).toBe(0);
    const out = join(dir, `mlp-${spec}-${prune.replace(/\W+/g, '_')}.onnx`);
    const r = cli([
      'compress',
      half,
      '-o',
      out,
      '--prune',
      `${prune}${prune.includes(':') ? ',' : ':'}min-size=0,storage=dense`,
      '--eval',
      '--data',
      fixture('mlp', 'test_data_set_0'),
      '--labels',
      fixture('mlp', 'labels.txt'),
      '--runs',
      '0',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      tensors: { name: string; dtypeAfter: string; sparsity?: number }[];
      accuracy: { drop: number };
    };
    const pruned = report.tensors.filter((t) => t.sparsity !== undefined && t.sparsity > 0);
    expect(pruned.length).toBeGreaterThan(0);
    expect(report.accuracy.drop).toBeLessThan(0.1);
    const before = new Map(readModel(half).graph.initializer.map((t) => [t.name, t]));
    for (const { name, dtypeAfter } of pruned) {
      expect(dtypeAfter).toBe(spec === 'fp16' ? 'float16' : 'bfloat16');
      const now = readModel(out).graph.initializer.find((t) => t.name === name)!;
      expect(now.data_type).toBe(dtype);
      const a = tensorValues(before.get(name)!) as Uint16Array,
        b = tensorValues(now) as Uint16Array;
      let zeros = 0;
      for (let i = 0; i < a.length; i++) {
        if ((b[i]! & 0x7fff) === 0) zeros++;
        else expect(b[i]).toBe(a[i]);
      }
      expect(zeros / a.length).toBeGreaterThanOrEqual(0.5);
    }
  });
});
