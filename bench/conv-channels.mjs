// Float Conv against its QDQ form (what ONNX Runtime fuses into QLinearConv) by input channels: one
// 3×3 Conv (pad 1, one group, uint8 activations, int8 weights per channel, int32 bias), ONNX Runtime
// with 1 thread. The models of a row run in turn, round after round, each round's median of `per`
// runs; printed: the median ratio QDQ / float over the rounds and its p10–p90. Static int8 keeps a
// Conv with fewer input channels than where the ratio falls below 1 in float (static.ts
// MIN_INTEGER_CONV_CHANNELS).
//   node bench/conv-channels.mjs [--rounds 15] [--per 5]   (build first: npm run build)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeModel } from '../dist/io/write.js';
import { intAttribute, intsAttribute, makeNode } from '../dist/ir/build.js';
import { Model } from '../dist/ir/model.js';
import { DataType } from '../dist/ir/onnx.js';
import { makeTensor } from '../dist/ir/tensor.js';
import { createSession, toFeeds } from '../dist/runtime/ort.js';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const rounds = option('--rounds', 15),
  per = option('--per', 5);
// [input channels, output channels, height = width, batch, kernel (3)]: the digits CNN's first layer,
// RGB-like first layers, the channel counts around the change, and 7×7 first layers (ResNet's conv1:
// 3 channels, but a GEMM depth of 3·7·7 = 147).
const CASES = [
  [1, 16, 8, 360],
  [1, 32, 28, 64],
  [2, 16, 8, 360],
  [3, 16, 32, 64],
  [3, 64, 32, 32],
  [4, 16, 8, 360],
  [6, 16, 8, 360],
  [8, 16, 8, 360],
  [16, 32, 8, 360],
  [32, 64, 16, 32],
  [1, 16, 28, 16, 7],
  [3, 64, 56, 4, 7],
  [3, 64, 112, 1, 7],
];
const dir = mkdtempSync(join(tmpdir(), 'conv-channels-'));
const bytes = (typed) => new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
const scalar = (name, type, typed) => makeTensor(name, type, [], bytes(typed));
const valueInfo = (name, dims) => ({
  name,
  type: {
    tensor_type: {
      elem_type: DataType.FLOAT,
      shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
    },
  },
  metadata_props: [],
});

/** A deterministic pseudo-random sequence in [-1, 1). */
function values(n, seed) {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 1073741824 - 1;
  }
  return out;
}

function convModel(cin, cout, hw, quantized, k) {
  const p = (k - 1) / 2;
  const conv = (inputs, output) => makeNode('Conv', inputs, [output], 'conv', [intsAttribute('pads', [p, p, p, p])]);
  const weight = values(cout * cin * k * k, 7).map((v) => v * 0.1);
  const nodes = [];
  const initializers = [];
  if (!quantized) {
    initializers.push(
      makeTensor('w', DataType.FLOAT, [cout, cin, k, k], bytes(weight)),
      makeTensor('b', DataType.FLOAT, [cout], bytes(new Float32Array(cout))),
    );
    nodes.push(conv(['x', 'w', 'b'], 'y'));
  } else {
    const codes = Int8Array.from(weight, (v) => Math.round(v / 0.001));
    initializers.push(
      scalar('xs', DataType.FLOAT, Float32Array.of(1 / 255)),
      scalar('xz', DataType.UINT8, Uint8Array.of(0)),
      makeTensor('wq', DataType.INT8, [cout, cin, k, k], bytes(codes)),
      makeTensor('ws', DataType.FLOAT, [cout], bytes(new Float32Array(cout).fill(0.001))),
      makeTensor('bq', DataType.INT32, [cout], bytes(new Int32Array(cout))),
      makeTensor('bs', DataType.FLOAT, [cout], bytes(new Float32Array(cout).fill(0.001 / 255))),
      scalar('ys', DataType.FLOAT, Float32Array.of(0.02)),
      scalar('yz', DataType.UINT8, Uint8Array.of(128)),
    );
    nodes.push(
      makeNode('QuantizeLinear', ['x', 'xs', 'xz'], ['xq'], 'xq'),
      makeNode('DequantizeLinear', ['xq', 'xs', 'xz'], ['xd'], 'xd'),
      makeNode('DequantizeLinear', ['wq', 'ws'], ['w'], 'wd', [intAttribute('axis', 0)]),
      makeNode('DequantizeLinear', ['bq', 'bs'], ['b'], 'bd', [intAttribute('axis', 0)]),
      conv(['xd', 'w', 'b'], 'c'),
      makeNode('QuantizeLinear', ['c', 'ys', 'yz'], ['cq'], 'cq'),
      makeNode('DequantizeLinear', ['cq', 'ys', 'yz'], ['y'], 'yd'),
    );
  }
  const graph = {
    name: 'conv',
    node: nodes,
    initializer: initializers,
    input: [valueInfo('x', ['N', cin, hw, hw])],
    output: [valueInfo('y', ['N', cout, hw, hw])],
    value_info: [],
    quantization_annotation: [],
    sparse_initializer: [],
    metadata_props: [],
  };
  const path = join(dir, `conv-${cin}-${cout}-${hw}-${k}-${quantized ? 'qdq' : 'float'}.onnx`);
  writeModel(
    new Model({ ir_version: 10, opset_import: [{ domain: '', version: 17 }], graph, metadata_props: [], training_info: [], functions: [] }),
    path,
  );
  return path;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

for (const [cin, cout, hw, batch, k = 3] of CASES) {
  const sessions = await Promise.all([false, true].map((q) => createSession(convModel(cin, cout, hw, q, k), { threads: 1 })));
  const feeds = toFeeds([
    { name: 'x', dtype: DataType.FLOAT, dims: [batch, cin, hw, hw], data: values(batch * cin * hw * hw, 3).map((v) => (v + 1) / 2) },
  ]);
  for (const s of sessions) for (let i = 0; i < 3; i++) await s.run(feeds);
  const times = [[], []];
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
  const ratios = times[1].map((t, r) => t / times[0][r]);
  console.log(
    `Conv ${cin}→${cout} ${hw}×${hw} batch ${batch}: float ${median(times[0]).toFixed(3)} ms, QDQ ${median(times[1]).toFixed(3)} ms, ` +
      `ratio ${median(ratios).toFixed(2)}× (p10–p90 ${quantile(ratios, 0.1).toFixed(2)}–${quantile(ratios, 0.9).toFixed(2)}×)`,
  );
}
