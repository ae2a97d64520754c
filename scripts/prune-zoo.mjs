#!/usr/bin/env node
// Structured pruning over ONNX's "light" model-zoo graphs (shipped in the onnx Python wheel under
// onnx/backend/test/data/light): each is pruned at the given ratio, the result is run in ONNX Runtime
// on a synthesized input, and its output shapes are compared with the original's.
//   node scripts/prune-zoo.mjs [DIR] [ratio=0.3]
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compress, readModel } from '../dist/index.js';
import { parseStep } from '../dist/pipeline/registry.js';
import { loadEvalData } from '../dist/runtime/data.js';
import { createSession, run } from '../dist/runtime/ort.js';

const dir = process.argv[2] ?? '.venv/lib/python3.11/site-packages/onnx/backend/test/data/light';
const ratio = process.argv[3] ?? '0.3';
const scratch = mkdtempSync(join(tmpdir(), 'onnxpress-zoo-'));
let failures = 0;
try {
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.onnx'))
    .sort()) {
    const input = join(dir, file),
      output = join(scratch, file);
    try {
      const result = await compress(input, output, { steps: [parseStep('prune', `structured:ratio=${ratio}`)] });
      const summary = result.passes[0];
      const layers = summary.tensors.filter((t) => t.details?.removed !== undefined);
      const data = loadEvalData(readModel(input), { batches: 1 });
      const [a, b] = [
        await run(await createSession(input), data.batches[0].inputs),
        await run(await createSession(output), data.batches[0].inputs),
      ];
      const same = a.every((o, i) => o.dims.join() === b[i].dims.join());
      if (!same) failures++;
      const reasons = new Map();
      for (const s of summary.skipped) {
        const key = s.reason.replace(/'[^']*'/g, "'…'");
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
      }
      console.log(
        `${file}: ${layers.length} layers pruned, ${summary.skipped.length} left alone; ` +
          `output shapes ${same ? 'match' : 'DIFFER'} ([${b.map((o) => o.dims.join('x')).join(', ')}]); ${statSync(input).size} → ${statSync(output).size} bytes`,
      );
      for (const [reason, n] of [...reasons].sort((x, y) => y[1] - x[1]).slice(0, 4)) console.log(`    ${n}× ${reason}`);
    } catch (e) {
      failures++;
      console.log(`${file}: FAILED: ${e.message.split('\n')[0]}`);
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
process.exitCode = failures ? 1 : 0;
