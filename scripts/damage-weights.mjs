#!/usr/bin/env node
// Writes a copy of a model with seeded uniform noise added to every weight matrix
// (scale × the tensor's RMS): a deliberately damaged model to try `onnxpress eval` on.
//   node scripts/damage-weights.mjs IN.onnx OUT.onnx [scale=0.8] [seed=7]
import { writeFileSync } from 'node:fs';
import { readModel, encode, floatValues } from '../dist/index.js';
import { seededRandom } from '../dist/kernels/random.js';

const [input, output, scale = '0.8', seed = '7'] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/damage-weights.mjs IN.onnx OUT.onnx [scale] [seed]');
  process.exit(2);
}
const model = readModel(input);
const random = seededRandom(Number(seed));
for (const t of model.graph.initializer) {
  if (t.dims.length < 2 || t.data_type !== 1) continue;
  const values = Float32Array.from(floatValues(t));
  const rms = Math.sqrt(values.reduce((s, v) => s + v * v, 0) / values.length);
  for (let i = 0; i < values.length; i++) values[i] += Number(scale) * rms * (random() * 2 - 1);
  t.raw_data = new Uint8Array(values.buffer);
  t.float_data = [];
}
writeFileSync(output, encode('onnx.ModelProto', model.proto));
