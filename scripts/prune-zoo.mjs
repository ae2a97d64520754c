#!/usr/bin/env node
// Structured pruning over ONNX's "light" model-zoo graphs (shipped in the onnx Python wheel under
// onnx/backend/test/data/light): each is pruned at the given ratio, the result is run in ONNX Runtime
// on one synthesized input (seeded: the same every run), and its outputs are compared with the
// original's: shapes, and cosine. Parameters count stored float weights and those ConstantOfShape
// generates (these graphs' weights are all generated, one value each: the figures are about
// topology, not accuracy). Prints a Markdown table, then what was left alone and why.
//   node scripts/prune-zoo.mjs [DIR] [ratio=0.3]
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compress, readModel } from '../dist/index.js';
import { tensorValues, toNumber } from '../dist/ir/tensor.js';
import { parseStep } from '../dist/pipeline/registry.js';
import { loadEvalData } from '../dist/runtime/data.js';
import { createSession, run } from '../dist/runtime/ort.js';

const dir = process.argv[2] ?? '.venv/lib/python3.11/site-packages/onnx/backend/test/data/light';
const ratio = process.argv[3] ?? '0.3';
const scratch = mkdtempSync(join(tmpdir(), 'onnxpress-zoo-'));

/** Float weights stored, plus those ConstantOfShape generates from a stored shape. */
function parameters(model) {
  const g = model.graph;
  const init = new Map(g.initializer.map((t) => [t.name, t]));
  let n = 0;
  for (const t of g.initializer) if (t.data_type === 1) n += t.dims.reduce((a, b) => a * toNumber(b), 1);
  for (const node of g.node)
    if (node.op_type === 'ConstantOfShape' && init.has(node.input[0]))
      n += Array.from(tensorValues(init.get(node.input[0])), Number).reduce((a, b) => a * b, 1);
  return n;
}

function cosine(a, b) {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb);
}

let failures = 0;
const notes = [];
console.log('| model | layers pruned | parameters before → after | output shapes equal | cosine vs original |');
console.log('| --- | --- | --- | --- | --- |');
try {
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.onnx'))
    .sort()) {
    const input = join(dir, file),
      output = join(scratch, file);
    const name = file.replace(/\.onnx$/, '');
    try {
      const result = await compress(input, output, { steps: [parseStep('prune', `structured:ratio=${ratio}`)] });
      const summary = result.passes[0];
      const layers = summary.tensors.filter((t) => t.details?.removed !== undefined);
      const data = loadEvalData(readModel(input), { batches: 1 });
      const [a, b] = [
        await run(await createSession(input), data.batches[0].inputs),
        await run(await createSession(output), data.batches[0].inputs),
      ];
      const same = a.length === b.length && a.every((o, i) => o.dims.join() === b[i].dims.join());
      if (!same) failures++;
      const cos = Math.min(...a.map((o, i) => cosine(o.data, b[i].data)));
      console.log(
        `| ${name} | ${layers.length} of ${layers.length + summary.skipped.length} | ${parameters(readModel(input))} → ${parameters(readModel(output))} | ${same ? 'yes' : 'NO'} [${b.map((o) => o.dims.join('×')).join(', ')}] | ${cos.toFixed(6)} |`,
      );
      const reasons = new Map();
      for (const s of summary.skipped) {
        const key = s.reason.replace(/'[^']*'/g, "'…'");
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
      }
      for (const [reason, n] of [...reasons].sort((x, y) => y[1] - x[1]).slice(0, 4)) notes.push(`${name}: ${n}× ${reason}`);
    } catch (e) {
      failures++;
      console.log(`| ${name} | FAILED: ${e.message.split('\n')[0]} | | | |`);
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`\nLeft alone:\n${notes.map((n) => `- ${n}`).join('\n')}`);
process.exitCode = failures ? 1 : 0;
