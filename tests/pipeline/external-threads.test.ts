// Kernel threads for external-data models (pipeline/compress.ts externalDataThreads): their model file
// is small, so the file-size rule gives them one thread; once read, they get one per core where every
// thread may hold twice the largest tensor in a quarter of the memory, else one (larger than memory).
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { writeModel } from '../../src/io/write.js';
import { Model } from '../../src/ir/model.js';
import { DataType } from '../../src/ir/onnx.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { externalDataThreads } from '../../src/pipeline/compress.js';
import { graph, model, node, vi } from '../convert/helpers.js';
import { scratch } from '../helpers.js';

const dir = scratch();
const MiB = 2 ** 20;

/** Two MatMul weights of `mib` MiB each, written with external data (or as one file). */
function twoWeights(name: string, mib: number, externalData: boolean): Model {
  const K = 1024,
    N = (mib * MiB) / 4 / K;
  const weight = (n: string) => makeTensor(n, DataType.FLOAT, [K, N], new Uint8Array(K * N * 4));
  const g = graph(
    [node('MatMul', ['x', 'W1'], ['h']), node('MatMul', ['x', 'W2'], ['y'])],
    [vi('x', [1, K])],
    [vi('h', [1, N]), vi('y', [1, N])],
    [weight('W1'), weight('W2')],
  );
  const path = join(dir, `${name}.onnx`);
  writeModel(new Model(model(g, 17)), path, { externalData });
  return readModel(path);
}

describe('externalDataThreads', () => {
  const large = twoWeights('large', 40, true);

  it('gives every core to 80 MiB of external data where memory is ample, capped by what fits', () => {
    // 1 GiB: a quarter holds 3 threads' 2 × 40 MiB.
    expect(externalDataThreads(large, 1024 * MiB)).toBe(Math.min(availableParallelism(), 3));
    expect(externalDataThreads(large, 640 * MiB)).toBe(Math.min(availableParallelism(), 2));
  });

  it('keeps one thread where two largest tensors do not fit a quarter of memory', () => {
    expect(externalDataThreads(large, 256 * MiB)).toBe(1);
  });

  it('keeps one thread for small external data and for single-file models (the file-size rule decides those)', () => {
    expect(externalDataThreads(twoWeights('small', 8, true), 1024 * MiB)).toBe(1);
    expect(externalDataThreads(twoWeights('single', 40, false), 1024 * MiB)).toBe(1);
  });
});
