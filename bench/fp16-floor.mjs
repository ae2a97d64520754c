// The floor of onnxpress's fp16 fill: every float32 weight of a model converted to float16 by the
// same kernel and the same job code the writer's fill runs (dist/kernels/half-file.js), pieces of
// 1 M values taken in turn by this thread and THREADS − 1 workers, written one after another — with
// no parsing, no checks, no graph and no header: where the weights lie is read beforehand, untimed,
// into a plan file kept beside the outputs (bench/out/fp16-floor/), made by the first run (the
// harness's untimed warm-up round) and remade when the model is newer. `onnxpress compress --quantize
// fp16:check=none` does all of this and more, so it cannot take less (bench/RESULTS.md, "fp16's
// floor"). Run `npm run build` first.
//   node bench/fp16-floor.mjs MODEL OUT [THREADS]
import fs from 'node:fs';
import { basename, resolve } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { HALF_FILL_JOB } from '../dist/kernels/half-file.js';

const PIECE = 1 << 20; // values, as kernels/half-fill.ts

/** Pieces of every weight: [file offset, values, output offset]. */
function piecesOf(plan) {
  const pieces = [];
  let to = 0;
  for (const { offset, length } of plan.weights) {
    for (let at = 0; at < length; at += PIECE) {
      const count = Math.min(PIECE, length - at);
      pieces.push([offset + at * 4, count, to]);
      to += count * 2;
    }
  }
  return pieces;
}

function part(plan, dst, first, step) {
  const pieces = piecesOf(plan);
  for (let i = first; i < pieces.length; i += step) {
    const [offset, length, toOffset] = pieces[i];
    HALF_FILL_JOB.execute({ kind: 'half-fill', values: { file: plan.file, offset, length }, bfloat16: false, to: dst, toOffset });
  }
}

async function writePlan(model, planPath) {
  const { readModel } = await import('../dist/io/read.js');
  const { forEachTensor } = await import('../dist/ir/walk.js');
  const { floatSource } = await import('../dist/ir/tensor.js');
  const weights = [];
  let file;
  forEachTensor(readModel(model).proto, ({ tensor }) => {
    if (tensor.data_type !== 1) return; // FLOAT
    const s = floatSource(tensor);
    if (!(s instanceof Float32Array) && s.length >= 1024) {
      file = s.file;
      weights.push({ offset: s.offset, length: s.length });
    }
  });
  fs.writeFileSync(planPath, JSON.stringify({ model: resolve(model), mtimeMs: fs.statSync(model).mtimeMs, file, weights }));
}

/** The plan of `model`, made first when missing or made for another file or an older one. */
async function planFor(model) {
  const dir = new URL('out/fp16-floor/', import.meta.url);
  const path = new URL(`${basename(model)}.json`, dir);
  const read = () => (fs.existsSync(path) ? JSON.parse(fs.readFileSync(path, 'utf8')) : undefined);
  const plan = read();
  if (plan?.model === resolve(model) && plan.mtimeMs === fs.statSync(model).mtimeMs) return plan;
  fs.mkdirSync(dir, { recursive: true });
  await writePlan(model, path);
  return read();
}

if (isMainThread) {
  const [model, dst, threadsArg = '2'] = process.argv.slice(2);
  const plan = await planFor(model);
  const threads = Number(threadsArg);
  fs.closeSync(fs.openSync(dst, 'w')); // created empty, as the writer's temporary file
  // Every thread starts converting once all are ready, as the writer's fill finds its prestarted
  // workers; the fill's own time goes to stderr.
  const start = new Int32Array(new SharedArrayBuffer(4));
  const workers = [];
  for (let t = 1; t < threads; t++) workers.push(new Worker(new URL(import.meta.url), { workerData: { plan, dst, t, threads, start } }));
  await Promise.all(workers.map((w) => new Promise((ready) => w.once('message', ready))));
  const began = performance.now();
  Atomics.store(start, 0, 1);
  Atomics.notify(start, 0);
  const done = workers.map((w) => new Promise((exit) => w.on('exit', exit)));
  part(plan, dst, 0, threads);
  await Promise.all(done);
  process.stderr.write(`fill ${(performance.now() - began).toFixed(1)} ms\n`);
} else {
  parentPort.postMessage('ready');
  Atomics.wait(workerData.start, 0, 0);
  part(workerData.plan, workerData.dst, workerData.t, workerData.threads);
}
