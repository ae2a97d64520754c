// Where the time of our unchanged round trip goes, phase by phase, in one process.
// Uses the built dist/ (run `npx tsc -p .` first), or ONNXPRESS=bench/out/ref-<commit>'s. Usage:
//   node bench/phases.mjs bench/models/bert_base.onnx [rounds=4]
// Phases, each timed on its own: readFile (readFileSync of the whole file into a fresh buffer),
// decode (protobuf -> objects; tensor bytes stay views), readModel (read + decode + external-data
// checks, as compress does), writeModel (encode + write to a temp file + rename), compare (re-read
// both files in 1 MiB blocks: what 5337bd3's compress did for its "identical" line; since 6c0d924
// compress compares each chunk with the in-memory source while writing instead).
import { readFileSync, rmSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const tree = resolve(process.env.ONNXPRESS ?? new URL('..', import.meta.url).pathname);
const { decodeModel, readModel } = await import(pathToFileURL(`${tree}/dist/io/read.js`).href);
const { writeModel } = await import(pathToFileURL(`${tree}/dist/io/write.js`).href);

const model = process.argv[2];
const rounds = Number(process.argv[3] ?? 4);
const out = new URL('./out/tmp/phases.onnx', import.meta.url).pathname;
const ms = (t) => (performance.now() - t).toFixed(0).padStart(5);

function compare(a, b) {
  const fa = openSync(a, 'r'),
    fb = openSync(b, 'r');
  const ba = Buffer.allocUnsafe(1 << 20),
    bb = Buffer.allocUnsafe(1 << 20);
  try {
    for (let pos = 0; ; pos += ba.length) {
      const na = readSync(fa, ba, 0, ba.length, pos),
        nb = readSync(fb, bb, 0, bb.length, pos);
      if (na !== nb || ba.compare(bb, 0, nb, 0, na) !== 0) return false;
      if (na === 0) return true;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

console.log(`${tree}: ${model}: ${statSync(model).size} bytes; times in ms`);
console.log('round  readFile  decode  readModel  writeModel  compare  rss_MB');
for (let r = 1; r <= rounds; r++) {
  rmSync(out, { force: true });
  let t = performance.now();
  const bytes = readFileSync(model);
  const tRead = ms(t);
  t = performance.now();
  decodeModel(bytes, model);
  const tDecode = ms(t);
  t = performance.now();
  const m = readModel(model);
  const tReadModel = ms(t);
  t = performance.now();
  writeModel(m, out);
  const tWrite = ms(t);
  t = performance.now();
  const same = compare(model, out);
  const tCmp = ms(t);
  console.log(
    `${String(r).padStart(5)}  ${tRead}     ${tDecode}   ${tReadModel}        ${tWrite}       ${tCmp}  ${(process.memoryUsage().rss / 1e6).toFixed(0)}  identical=${same}`,
  );
}
rmSync(out, { force: true });
