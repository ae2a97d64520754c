#!/usr/bin/env node
// The sha256 of every file a set of pipelines writes from the bundled fixtures: for refactors that
// must leave outputs byte-identical (issue 20). tests/pipeline/golden-outputs.test.ts compares a
// fresh run with tests/golden/outputs.json, which was written by the code before the refactor.
//
//   node scripts/golden-outputs.mjs                  print {case: {file: sha256}} as JSON
//   node scripts/golden-outputs.mjs --update         rewrite tests/golden/outputs.json
//   node scripts/golden-outputs.mjs --dist DIR       use another build (e.g. bench/out/ref-REV/dist)
//   node scripts/golden-outputs.mjs --model M.onnx   the same pipelines on one other model (bench models)
//   node scripts/golden-outputs.mjs --only a,b       only these pipelines (by name)
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const dist = resolve(flag('--dist') ?? join(root, 'dist'));
const lib = await import(pathToFileURL(join(dist, 'index.js')).href);

const f = (p) => join(root, 'fixtures', p);
const step = (family, spec) => lib.parseStep(family, spec);
const q = (spec) => step('quantize', spec);
const p = (spec) => step('prune', spec);
const s = (spec) => step('share', spec);

/** Pipelines on one model: [name, steps, options]. */
function pipelines(model) {
  return [
    ['int8', [q('int8')]],
    ['int8-weight-tensor-asym', [q('int8:mode=weight,granularity=tensor,symmetric=false')]],
    ['int8-dynamic-mse', [q('int8:mode=dynamic,search=mse')]],
    ['int4', [q('int4')]],
    ['int4-dq-asym-none', [q('int4:format=dq,symmetric=false,search=none,block=16')]],
    ['magnitude', [p('magnitude:sparsity=0.6')]],
    ['magnitude-global-dense', [p('magnitude:scope=global,storage=dense')]],
    ['nm', [p('nm')]],
    ['structured', [p('structured:ratio=0.25')]],
    ['dedup', [s('dedup')]],
    ['near', [s('near:tolerance=0.5,group-by=shape')]],
    ['cluster', [s('cluster:k=8,min-size=16')]],
    ['cluster-channel', [s('cluster:k=4,granularity=channel,min-size=16')]],
    ['prune-then-int8', [p('magnitude:sparsity=0.5'), q('int8')]],
    ['nm-then-int4', [p('nm'), q('int4:min-size=16')]],
    ['dedup-cluster-int8', [s('dedup'), s('cluster:k=16,min-size=16'), q('int8:min-size=16')]],
    ['none', []],
    // The same model read lazily (every payload left in the file) and written with external data.
    [
      'int8-lazy-external',
      [q('int8')],
      { read: { lazyFileBytes: 0, lazyTensorBytes: 16 }, write: { externalData: true, sizeThreshold: 64 } },
    ],
    ['magnitude-lazy', [p('magnitude')], { read: { lazyFileBytes: 0, lazyTensorBytes: 16 } }],
    ['int4-external-2threads', [q('int4:min-size=16')], { write: { externalData: true, sizeThreshold: 64 }, threads: 2 }],
    ['cluster-external', [s('cluster:k=8,min-size=16')], { write: { externalData: true, sizeThreshold: 64 } }],
  ].map(([name, steps, options]) => ({ name, model, steps, options: options ?? {} }));
}

function cases() {
  const names = flag('--only')?.split(',');
  const pick = (list) => (names ? list.filter((c) => names.includes(c.name.split('/').pop())) : list);
  const only = flag('--model');
  if (only) return pick(pipelines(resolve(only)));
  const models = {
    digits: f('digits/model.onnx'),
    mlp: f('mlp/model.onnx'),
    charlm: f('charlm/model.onnx'),
    repeated: f('repeated/model.onnx'),
    external: f('conformance/external/model.onnx'),
    subgraph: f('conformance/if_subgraph/model.onnx'),
    constants: f('conformance/constants/model.onnx'),
  };
  const all = [];
  for (const [key, model] of Object.entries(models)) for (const c of pick(pipelines(model))) all.push({ ...c, name: `${key}/${c.name}` });
  all.push({ name: 'charlm/heads', model: models.charlm, steps: [p('heads:ratio=0.5')], options: {} });
  all.push({ name: 'external/none-inline', model: models.external, steps: [], options: { write: { externalData: false } } });
  all.push({ name: 'charlm/int8-gptq', model: models.charlm, steps: [q(`int8:calibration=${f('charlm/test_data_set_0')}`)], options: {} });
  all.push({
    name: 'charlm/int4-gptq',
    model: models.charlm,
    steps: [q(`int4:calibration=${f('charlm/test_data_set_0')},min-size=16`)],
    options: {},
  });
  return all;
}

function hashFolder(dir) {
  const out = {};
  for (const name of readdirSync(dir).sort())
    out[name] = createHash('sha256')
      .update(readFileSync(join(dir, name)))
      .digest('hex');
  return out;
}

async function runCase(c, work) {
  const dir = join(work, c.name.replace(/[^a-z0-9-]+/gi, '_'));
  mkdirSync(dir, { recursive: true });
  try {
    await lib.compress(c.model, join(dir, 'out.onnx'), {
      steps: c.steps,
      seed: 0,
      threads: c.options.threads ?? 1,
      read: c.options.read,
      write: { force: true, ...c.options.write },
    });
    return hashFolder(dir);
  } catch (e) {
    // A pipeline that does not apply to a model is part of the record too.
    return {
      error: String(e.message ?? e)
        .replace(work, '<work>')
        .replaceAll(root, '<root>'),
    };
  }
}

async function runMany(work) {
  if (flag('--model')) return {};
  const dir = join(work, 'many');
  mkdirSync(dir);
  const results = {};
  for (const [name, steps] of [
    ['many/dedup', [s('dedup')]],
    ['many/cluster-int8', [s('cluster:k=8,min-size=16'), q('int8:min-size=16')]],
  ]) {
    const out = join(dir, name.split('/')[1]);
    const inputs = join(dir, 'in');
    mkdirSync(inputs, { recursive: true });
    const models = [
      ['repeated.onnx', 'repeated/model.onnx'],
      ['tied.onnx', 'repeated/tied/model.onnx'],
      ['mlp.onnx', 'mlp/model.onnx'],
    ].map(([to, from]) => {
      copyFileSync(f(from), join(inputs, to));
      return join(inputs, to);
    });
    await lib.compressMany(models, out, { steps, seed: 0, threads: 1, write: { force: true } });
    const hashes = {};
    for (const sub of readdirSync(out).sort()) {
      const full = join(out, sub);
      try {
        Object.assign(hashes, Object.fromEntries(Object.entries(hashFolder(full)).map(([k, v]) => [`${sub}/${k}`, v])));
      } catch {
        hashes[sub] = createHash('sha256').update(readFileSync(full)).digest('hex');
      }
    }
    results[name] = hashes;
  }
  return results;
}

const work = mkdtempSync(join(tmpdir(), 'onnxpress-golden-'));
try {
  const results = {};
  for (const c of cases()) results[c.name] = await runCase(c, work);
  Object.assign(results, await runMany(work));
  const text = JSON.stringify(results, null, 1) + '\n';
  if (args.includes('--update')) {
    mkdirSync(join(root, 'tests/golden'), { recursive: true });
    writeFileSync(join(root, 'tests/golden/outputs.json'), text);
    console.error(`wrote tests/golden/outputs.json (${Object.keys(results).length} cases)`);
  } else process.stdout.write(text);
} finally {
  rmSync(work, { recursive: true, force: true });
}
