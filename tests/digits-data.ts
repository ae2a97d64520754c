// Evaluation data made of parts of the digits fixture's 360 images, for tests of what is measured on
// which samples (auto chooses on one part of its data and reports on the other).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from '../src/io/codec.js';
import { readTestDataSet } from '../src/io/testdata.js';
import { makeTensor } from '../src/ir/tensor.js';
import { fixture } from './helpers.js';

const IMAGES = readTestDataSet(fixture('digits', 'test_data_set_0')).inputs[0]!;
const LABELS = readFileSync(fixture('digits', 'labels.txt'), 'utf8').trim().split('\n');
const PIXELS = 64;

/**
 * A folder in `dir` with a test_data_set_N for each range of images [from, to), in that order, and a
 * labels file in the same order: the CLI's data flags for it (`--runs 0`: no timing).
 */
export function digitsData(dir: string, name: string, ranges: [number, number][]): string[] {
  const root = join(dir, name);
  ranges.forEach(([from, to], b) => {
    const set = join(root, `test_data_set_${b}`);
    mkdirSync(set, { recursive: true });
    const images = (IMAGES.data as Float32Array).slice(from * PIXELS, to * PIXELS);
    const tensor = makeTensor(IMAGES.name, 1, [to - from, ...IMAGES.dims.slice(1)], new Uint8Array(images.buffer));
    writeFileSync(join(set, 'input_0.pb'), encode('onnx.TensorProto', tensor));
  });
  const labels = join(dir, `${name}-labels.txt`);
  writeFileSync(labels, ranges.flatMap(([from, to]) => LABELS.slice(from, to)).join('\n') + '\n');
  return ['--data', root, '--labels', labels, '--runs', '0'];
}
