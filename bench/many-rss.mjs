// Peak memory of compressing several external-data models into one shared data file (issue 22):
//   node bench/many-rss.mjs [MB=300] [-- passes…]     default passes: --quantize int8 --share dedup
// Builds (once, in bench/out/many-MB/) two models of about MB megabytes each from the same random
// weights: a chain of D×D MatMuls (D = 1024, 4 MiB a weight), the second with every initializer
// renamed, as another exporter would write it. They are encoded with onnxpress's own codec and
// turned into external-data models by `onnxpress compress --external-data` (no passes), so Python
// is not needed. Then runs `onnxpress compress A B -o DIR <passes>` under /usr/bin/time -f %M and
// prints the peak RSS against one model's size. ONNXPRESS=<tree> measures another build (a tree
// with dist/ and bin/, e.g. an unpacked `git archive` of an earlier commit, built): the models are
// always built with this tree's dist/ (run `npm run build` first).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const here = resolve(new URL('..', import.meta.url).pathname);
const tree = resolve(process.env.ONNXPRESS ?? here);
const args = process.argv.slice(2);
const dash = args.indexOf('--');
const mb = Number((dash < 0 ? args : args.slice(0, dash))[0] ?? 300);
const passes = dash < 0 ? ['--quantize', 'int8', '--share', 'dedup'] : args.slice(dash + 1);
const { encode } = await import(pathToFileURL(`${here}/dist/io/codec.js`).href);

const D = 1024;
const layers = Math.max(1, Math.round((mb * 1e6) / (D * D * 4)));
const dir = join(here, 'bench', 'out', `many-${mb}`);

function tensor(name, dims, raw) {
  return {
    name,
    dims,
    data_type: 1,
    raw_data: raw,
    float_data: [],
    int32_data: [],
    string_data: [],
    int64_data: [],
    double_data: [],
    uint64_data: [],
    external_data: [],
    metadata_props: [],
  };
}

/** Layer `layer`'s weights, the same in both models (a seeded generator per layer). */
function weights(layer) {
  const values = new Float32Array(D * D);
  let s = ((layer + 1) * 2654435761) >>> 0;
  for (let i = 0; i < values.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    values[i] = (s / 2 ** 32 - 0.5) * (2 / Math.sqrt(D));
  }
  return new Uint8Array(values.buffer);
}

function build(path, prefix) {
  const vi = (name) => ({
    name,
    type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }, { dim_value: D }] } } },
    metadata_props: [],
  });
  const node = (op, input, output) => ({
    op_type: op,
    input,
    output,
    name: `${output[0]}_${op}`,
    attribute: [],
    metadata_props: [],
    device_configurations: [],
  });
  const initializer = [],
    nodes = [];
  let x = 'x';
  for (let l = 0; l < layers; l++) {
    const w = `${prefix}${l}.weight`;
    initializer.push(tensor(w, [D, D], weights(l)));
    nodes.push(node('MatMul', [x, w], [`${prefix}${l}.out`]));
    x = `${prefix}${l}.out`;
  }
  nodes.push(node('Identity', [x], ['y']));
  const graph = {
    node: nodes,
    initializer,
    input: [vi('x')],
    output: [vi('y')],
    value_info: [],
    quantization_annotation: [],
    sparse_initializer: [],
    metadata_props: [],
    name: 'g',
  };
  const model = { ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph, functions: [], metadata_props: [], training_info: [] };
  const inline = join(dir, 'inline.onnx');
  writeFileSync(inline, encode('onnx.ModelProto', model));
  execFileSync(process.execPath, [join(here, 'bin', 'onnxpress'), 'compress', inline, '-o', path, '--external-data'], { stdio: 'ignore' });
  rmSync(inline);
}

const a = join(dir, 'in', 'a.onnx'),
  b = join(dir, 'in', 'b.onnx');
if (!existsSync(`${b}.data`)) {
  mkdirSync(join(dir, 'in'), { recursive: true });
  build(a, 'blocks.');
  build(b, 'exported/layer_');
}
const modelBytes = statSync(a).size + statSync(`${a}.data`).size;
const out = join(dir, 'out');
rmSync(out, { recursive: true, force: true });
const run = spawnSync(
  '/usr/bin/time',
  ['-f', '%M %e', process.execPath, join(tree, 'bin', 'onnxpress'), 'compress', a, b, '-o', out, ...passes],
  { encoding: 'utf8' },
);
if (run.status !== 0) throw new Error(`compress failed (${run.status}): ${run.stderr}`);
const [kb, seconds] = run.stderr.trim().split('\n').pop().split(' ').map(Number);
const outBytes = readdirSync(out).reduce((n, f) => n + statSync(join(out, f)).size, 0);
const MB = (n) => (n / 1e6).toFixed(1);
console.log(`${tree}: compress a b ${passes.join(' ')}: ${layers} weights of ${D}×${D}, each model ${MB(modelBytes)} MB`);
console.log(
  `peak RSS ${MB(kb * 1024)} MB (${((kb * 1024) / modelBytes).toFixed(2)}× one model), ${seconds} s; output ${MB(outBytes)} MB in ${readdirSync(out).sort().join(', ')}`,
);
