// compress --eval's per-node errors compare the compressed model with the original as it is on disk,
// not with the model the passes changed in memory (which made every node read "cosine 1.000000").
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();

it('compress --eval: the quantized layers show the error they add', () => {
  const r = cli([
    'compress',
    fixture('digits', 'model.onnx'),
    '-o',
    join(dir, 'd.onnx'),
    '--quantize',
    'int8',
    '--eval',
    '--data',
    fixture('digits', 'test_data_set_0'),
    '--runs',
    '0',
    '--json',
  ]);
  expect(r.code, r.stderr).toBe(0);
  const nodes = JSON.parse(r.stdout) as {
    accuracy: { nodes?: { output: string; cosine: number; noiseAdded: number }[] };
    nodes?: { output: string; cosine: number; noiseAdded: number }[];
  };
  const list = nodes.nodes ?? nodes.accuracy.nodes ?? [];
  expect(list.length).toBeGreaterThan(0);
  // conv1 is below min-size (float), conv2 and the Gemms are int8: their outputs differ from the original's.
  expect(list.find((n) => n.output === '/conv1/Conv_output_0')?.cosine).toBe(1);
  expect(list.find((n) => n.output === '/conv2/Conv_output_0')!.cosine).toBeLessThan(1);
  expect(list[0]!.noiseAdded).toBeGreaterThan(0);
});
