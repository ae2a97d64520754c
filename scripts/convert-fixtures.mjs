#!/usr/bin/env node
// Copies the ONNX backend test cases that exercise opset conversion into fixtures/convert-backend/
// (model.onnx and test_data_set_0 of each; cases of at most 48 KB), for tests/convert/backend.test.ts.
// A case is taken when its default opset is below 21 and converting it to 21 either refuses or
// starts below 13 or runs an adapter. Needs `npm run build` first.
//   node scripts/convert-fixtures.mjs ROOT...   (folders of backend test cases, searched for model.onnx)
// The committed set came from the onnx wheel's data/{pytorch-converted,pytorch-operator,simple} and
// from its node cases written by scripts/backend-node-data.py.
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { convertOpset } from '../dist/convert/convert.js';
import { readModel } from '../dist/io/read.js';
import { opsetVersion } from '../dist/ir/opset.js';
import { findModels } from '../dist/conformance/round-trip.js';

const OUT = 'fixtures/convert-backend';
const LIMIT = 48 * 1024;
const roots = process.argv.slice(2);
if (roots.length === 0) {
  console.error('usage: node scripts/convert-fixtures.mjs ROOT...');
  process.exit(2);
}
const size = (p) => (statSync(p).isDirectory() ? readdirSync(p).reduce((t, f) => t + size(join(p, f)), 0) : statSync(p).size);

rmSync(OUT, { recursive: true, force: true });
let taken = 0,
  bytes = 0;
for (const root of roots) {
  for (const path of findModels(root)) {
    const dir = dirname(path),
      set = join(dir, 'test_data_set_0');
    if (!existsSync(set) || size(path) + size(set) > LIMIT) continue;
    let model;
    try {
      model = readModel(path);
    } catch {
      continue;
    }
    const from = opsetVersion(model.proto, '');
    if (from === undefined || from >= 21) continue;
    let take;
    try {
      take = from < 13 || convertOpset(model, 21).converted.length > 0;
    } catch {
      take = from >= 6;
    }
    if (!take) continue;
    const name = join(OUT, `${basename(root)}__${relative(root, dir).replace(/[\\/]/g, '__')}`);
    mkdirSync(name, { recursive: true });
    cpSync(path, join(name, 'model.onnx'));
    cpSync(set, join(name, 'test_data_set_0'), { recursive: true });
    taken++;
    bytes += size(path) + size(set);
  }
}
console.log(`${taken} cases, ${(bytes / 1024).toFixed(0)} KB in ${OUT}`);
