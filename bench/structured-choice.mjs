// How calibrated structured pruning's defaults were chosen: on the calibration split alone. The
// split is cut in two halves; each setting calibrates on one half and is measured on the other
// (both ways, averaged), so that least squares is not judged on the data it was fitted to. The
// evaluation sets (digits test_data_set_0, char LM test_data_set_0) play no part.
//   node bench/structured-choice.mjs
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from '../dist/io/codec.js';
import { parseNpy, readTensorFile, readTestDataSet } from '../dist/io/testdata.js';
import { makeTensor } from '../dist/ir/tensor.js';
import { compress } from '../dist/pipeline/compress.js';
import { parseStep } from '../dist/pipeline/registry.js';
import { evaluate } from '../dist/report/evaluate.js';

const root = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'structured-choice-'));

/** Rows [from, to) of every array of a data set, written as a test_data_set_0 folder (labels beside it, as `labels_0.pb`). */
function half(arrays, from, to, dir) {
  const set = join(dir, 'test_data_set_0');
  mkdirSync(set, { recursive: true });
  for (const [file, a] of arrays) {
    const row = a.data.length / a.dims[0];
    const data = a.data.slice(from * row, to * row);
    writeFileSync(
      join(set, file),
      encode('onnx.TensorProto', makeTensor(a.name, a.dtype, [to - from, ...a.dims.slice(1)], new Uint8Array(data.buffer))),
    );
  }
  return set;
}

function folds(name, arrays, rows) {
  const n = Math.floor(rows / 2);
  return [half(arrays, 0, n, join(work, `${name}-a`)), half(arrays, n, rows, join(work, `${name}-b`))];
}

const digitsSet = readTestDataSet(join(root, 'fixtures/digits/test_data_set_1'));
const l1 = parseNpy(readFileSync(join(root, 'fixtures/digits/labels_1.npy')), 'labels_1.npy');
const digitsFolds = folds(
  'digits',
  [
    ['input_0.pb', { ...digitsSet.inputs[0] }],
    ['labels_0.pb', { name: 'labels', dtype: 7, dims: [l1.data.length], data: BigInt64Array.from(Array.from(l1.data, (v) => BigInt(v))) }],
  ],
  digitsSet.inputs[0].dims[0],
);
const lm = readTestDataSet(join(root, 'fixtures/charlm/calibration/test_data_set_0'));
const lmLab = readTensorFile(join(root, 'fixtures/charlm/calibration/test_data_set_0/labels_0.pb'));
const lmFolds = folds(
  'charlm',
  [
    ['input_0.pb', lm.inputs[0]],
    ['labels_0.pb', lmLab],
  ],
  lm.inputs[0].dims[0],
);

const settings = [];
for (const score of ['l1', 'activation']) for (const reconstruct of ['none', 'bias', 'lstsq']) settings.push({ score, reconstruct });
for (const damp of [0.001, 0.1, 1]) settings.push({ score: 'activation', reconstruct: 'lstsq', damp });

async function measure(model, spec, [a, b]) {
  let sum = 0,
    snr = 0;
  for (const [cal, ev] of [
    [a, b],
    [b, a],
  ]) {
    const out = join(work, 'out.onnx');
    await compress(model, out, { steps: [parseStep('prune', `${spec},calibration=${cal}`)], force: true });
    const e = await evaluate(model, out, { runs: 0, data: ev });
    sum += e.accuracy.drop;
    snr += Object.values(e.accuracy.fidelity)[0].snrDb;
  }
  return [sum / 2, snr / 2];
}

console.log(
  '| setting | digits CNN 30 %: top-1 drop, logits SNR (2-fold on test_data_set_1) | char LM FFN 30 %: perplexity rise, logits SNR (2-fold on calibration) |',
);
console.log('| --- | --- | --- |');
for (const s of settings) {
  const opts = `score=${s.score},reconstruct=${s.reconstruct}${s.damp !== undefined ? `,damp=${s.damp}` : ''}`;
  const [d, ds] = await measure(join(root, 'fixtures/digits/model.onnx'), `structured:ratio=0.3,${opts}`, digitsFolds);
  const [c, cs] = await measure(join(root, 'fixtures/charlm/model.onnx'), `structured:ratio=0.3,target=neurons,${opts}`, lmFolds);
  console.log(`| ${opts} | ${(d * 100).toFixed(2)} pt, ${ds.toFixed(1)} dB | ${(c * 100).toFixed(2)} %, ${cs.toFixed(1)} dB |`);
}
