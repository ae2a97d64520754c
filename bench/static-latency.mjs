// ONNX Runtime latency of compressed models against their original, 1 thread, at batch 1 and at the
// data's full batch: the models run in turn, round after round (so that a busy machine slows all of
// them alike), each round's median of `per` runs per model, and each round's ratio to the original.
// Prints per model and batch the median ratio and its p10–p90 over the rounds.
//   node bench/static-latency.mjs DATA ORIGINAL.onnx A.onnx [B.onnx ...] [--rounds 40] [--per 10] [--floor]
//   (DATA: a test_data_set folder; build first: npm run build)
// --floor adds a model that only copies the original's input to its output (one Identity node): the
// cost of a run that computes nothing (binding the inputs, fetching the output, the session's own
// work), which no quantized form of the model can go below.
import { runtime, createSession, toFeeds } from '../dist/runtime/ort.js';
import { readTestDataSet } from '../dist/io/testdata.js';
import { readModel } from '../dist/io/read.js';
import { writeModel } from '../dist/io/write.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const rounds = option('--rounds', 40),
  per = option('--per', 10);
const floor = args.includes('--floor');
if (floor) args.splice(args.indexOf('--floor'), 1);
const [data, ...models] = args;
if (floor) models.push(floorModel(models[0]));

/** The original's first input copied to its only output by one Identity node, written to a temporary file. */
function floorModel(original) {
  const model = readModel(original);
  const g = model.graph;
  const input = g.input.find((i) => !g.initializer.some((t) => t.name === i.name));
  g.node = [{ op_type: 'Identity', input: [input.name], output: ['floor_output'], name: 'floor', attribute: [] }];
  g.initializer = [];
  g.value_info = [];
  g.input = [input];
  g.output = [{ ...input, name: 'floor_output' }];
  const path = join(mkdtempSync(join(tmpdir(), 'static-latency-')), 'floor (Identity).onnx');
  writeModel(model, path);
  return path;
}
await runtime();
const { inputs } = readTestDataSet(data);

/** The first `n` samples of every input (the first dimension). */
function firstSamples(n) {
  return inputs.map((a) => {
    const size = a.data.length / a.dims[0];
    return { ...a, dims: [n, ...a.dims.slice(1)], data: a.data.slice(0, n * size) };
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const sessions = await Promise.all(models.map((m) => createSession(m, { threads: 1 })));

for (const batch of [1, inputs[0].dims[0]]) {
  const feeds = toFeeds(firstSamples(batch));
  for (const s of sessions) for (let i = 0; i < 5; i++) await s.run(feeds);
  const times = models.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [m, s] of sessions.entries()) {
      const each = [];
      for (let i = 0; i < per; i++) {
        const t = performance.now();
        await s.run(feeds);
        each.push(performance.now() - t);
      }
      times[m].push(median(each));
    }
  }
  const base = times[0];
  console.log(`batch ${batch}: ${models[0]} median ${median(base).toFixed(3)} ms`);
  for (let m = 1; m < models.length; m++) {
    const ratios = times[m].map((t, r) => t / base[r]);
    console.log(
      `  ${models[m]}: median ${median(times[m]).toFixed(3)} ms, ratio ${median(ratios).toFixed(2)}× (p10–p90 ${quantile(ratios, 0.1).toFixed(2)}–${quantile(ratios, 0.9).toFixed(2)}×)`,
    );
  }
}
