#!/usr/bin/env node
// npm run fuzz [-- COUNT [SEED]]: thousands of hostile mutations of the fixtures through the commands.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzz } from './fuzz-lib.mjs';

const count = Number(process.argv[2] ?? 2000);
const seed = Number(process.argv[3] ?? 1);
const dir = mkdtempSync(join(tmpdir(), 'onnxpress-fuzz-'));
const started = Date.now();
try {
  const s = await fuzz({ count, seed, cliEvery: 40, dir, log: (m) => console.log(m) });
  console.log(`${s.cases} mutated models (seed ${seed}), ${s.cases * 3} in-process runs + ${s.cliRuns} CLI runs with ONNX Runtime, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`  results: ${s.ok} succeeded, ${s.refused} refused with a one-line error`);
  console.log(`  ${s.crashes.length} crashes, ${s.hangs.length} hangs, ${s.partial.length} partial outputs`);
  for (const c of [...s.crashes, ...s.hangs, ...s.partial].slice(0, 20)) console.log(`    ${c}`);
  process.exitCode = s.crashes.length + s.hangs.length + s.partial.length > 0 ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
