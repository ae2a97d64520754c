// A validation set for the char LM that none of its tuning used: windows of the text's held-out
// tail (fixtures/make_fixtures.py: the last tenth of Python's pydoc topics, as the model's own
// test set) that do not overlap the 8 windows of fixtures/charlm/test_data_set_0, on which the int4
// clipping search's ratios were chosen. Writes OUT/test_data_set_0/{input_0.pb,labels_0.pb}.
//   python3 -c "import pydoc_data.topics as t; print(''.join(t.topics[k] for k in sorted(t.topics)), end='')" > /tmp/topics.txt
//   node bench/charlm-heldout.mjs /tmp/topics.txt bench/out/charlm-heldout [windows=64]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from '../dist/io/codec.js';
import { makeTensor } from '../dist/ir/tensor.js';
import { readTestDataSet } from '../dist/io/testdata.js';

const [textPath, out, count = '64'] = process.argv.slice(2);
const T = 64;
const vocab = JSON.parse(readFileSync(new URL('../fixtures/charlm/vocab.json', import.meta.url), 'utf8'));
const text = [...readFileSync(textPath, 'utf8')].filter((c) => c === '\n' || (c.charCodeAt(0) >= 32 && c.charCodeAt(0) < 127)).join('');
const ids = Array.from(text, (c) => vocab.indexOf(c));
const val = ids.slice(ids.length - Math.floor(ids.length / 10));
// The fixture's test windows: 8 evenly spaced starts (numpy linspace, truncated).
const tests = Array.from({ length: 8 }, (_, i) => Math.trunc((i * (val.length - T - 2)) / 7));
const given = readTestDataSet(new URL('../fixtures/charlm/test_data_set_0', import.meta.url).pathname).inputs[0];
tests.forEach((s, row) => {
  const fixtureRow = Array.from(given.data.slice(row * T, (row + 1) * T), Number);
  if (fixtureRow.join() !== val.slice(s, s + T).join()) throw new Error('the text is not the one the fixture was made from');
});
const overlaps = (s) => tests.some((t) => s < t + T + 1 && t < s + T + 1);
const starts = [];
for (let s = 0; s + T + 1 <= val.length && starts.length < Number(count); s += T + 1) if (!overlaps(s)) starts.push(s);
const inputs = BigInt64Array.from(
  starts.flatMap((s) => val.slice(s, s + T)),
  BigInt,
);
const labels = BigInt64Array.from(
  starts.flatMap((s) => val.slice(s + 1, s + T + 1)),
  BigInt,
);
const set = join(out, 'test_data_set_0');
mkdirSync(set, { recursive: true });
writeFileSync(
  join(set, 'input_0.pb'),
  encode('onnx.TensorProto', makeTensor('input_ids', 7, [starts.length, T], new Uint8Array(inputs.buffer))),
);
writeFileSync(
  join(set, 'labels_0.pb'),
  encode('onnx.TensorProto', makeTensor('labels', 7, [starts.length, T], new Uint8Array(labels.buffer))),
);
console.log(
  `${starts.length} windows of ${T} tokens (${starts.length * T} tokens) from the held-out tail, none overlapping the fixture's test windows: ${set}`,
);
