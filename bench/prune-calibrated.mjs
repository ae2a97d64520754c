// SparseGPT against our GPTQ (int4 with calibration=) on the same calibration data, in one run:
// both calibrate every layer's XᵀX in one ONNX Runtime run, then factor each layer's damped Hessian.
// Writes a calibration set of SEQUENCES random token sequences of LENGTH tokens for a BERT-style model
// (input_ids, attention_mask) into bench/out/, then runs the two commands interleaved ROUNDS times
// and prints wall seconds and peak RSS (GNU time's %M: the largest single process, the CLI or its
// ONNX Runtime child) for each, with their ratios.
//   npm run build && node bench/prune-calibrated.mjs bench/models/bert_base.onnx [sequences=128] [length=128] [rounds=3] [include]
// `include` (a pattern as the passes' include= takes, e.g. '*layer.0/*') limits both to those layers.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from '../dist/io/codec.js';
import { makeTensor } from '../dist/ir/tensor.js';

const [model, sequences = '128', length = '128', rounds = '3', include] = process.argv.slice(2);
const only = include ? `,include=${include}` : '';
const S = Number(sequences),
  T = Number(length);
const dir = join('bench', 'out', `calibration-${S}x${T}`, 'test_data_set_0');
mkdirSync(dir, { recursive: true });
// A fixed linear congruential sequence: the same tokens every run, no dependency.
let seed = 12345;
const ids = new BigInt64Array(S * T).map(() => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return BigInt(1000 + (seed % 20000));
});
writeFileSync(join(dir, 'input_0.pb'), encode('onnx.TensorProto', makeTensor('input_ids', 7, [S, T], new Uint8Array(ids.buffer))));
const mask = new BigInt64Array(S * T).fill(1n);
writeFileSync(join(dir, 'input_1.pb'), encode('onnx.TensorProto', makeTensor('attention_mask', 7, [S, T], new Uint8Array(mask.buffer))));
const calibration = join('bench', 'out', `calibration-${S}x${T}`);

const runs = {
  sparsegpt: ['--prune', `sparsegpt:sparsity=0.5,calibration=${calibration}${only}`],
  'sparsegpt refit=0': ['--prune', `sparsegpt:sparsity=0.5,refit=0,calibration=${calibration}${only}`],
  'gptq int4': ['--quantize', `int4:calibration=${calibration}${only}`],
};
const out = join('bench', 'out', 'prune-calibrated.onnx');
const results = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
for (let round = 0; round < Number(rounds); round++) {
  for (const [name, args] of Object.entries(runs)) {
    rmSync(out, { force: true });
    const start = process.hrtime.bigint();
    const run = spawnSync('/usr/bin/time', ['-f', '%M', 'bin/onnxpress', 'compress', model, '-o', out, '--force', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (run.status !== 0) throw new Error(`${name}: exit ${run.status}: ${run.stderr}`);
    const stderr = run.stderr;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const rssKb = Number(stderr.trim().split('\n').pop());
    results[name].push({ seconds, rssMb: rssKb / 1024 });
    console.error(`${name} round ${round + 1}: ${seconds.toFixed(1)} s, peak RSS ${(rssKb / 1024).toFixed(0)} MB`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const modelMb = statSync(model).size / 1e6;
const base = median(results['gptq int4'].map((r) => r.seconds));
console.log(
  `| run (${S} sequences × ${T} tokens${include ? `, ${include}` : ''}) | median s | × GPTQ int4 | peak RSS MB (max) | × model bytes |`,
);
console.log('| --- | --- | --- | --- | --- |');
for (const [name, rs] of Object.entries(results)) {
  const s = median(rs.map((r) => r.seconds));
  const rss = Math.max(...rs.map((r) => r.rssMb));
  console.log(`| ${name} | ${s.toFixed(1)} | ${(s / base).toFixed(2)} | ${rss.toFixed(0)} | ${((rss * 1.048576) / modelMb).toFixed(2)} |`);
}
