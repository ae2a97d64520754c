#!/usr/bin/env node
// npm run fuzz [-- COUNT [SEED]]: every crafted hostile case (scripts/crafted-cases.mjs, traced with
// strace where it is installed), then COUNT random mutations of the fixtures through the commands.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CRAFTED } from './crafted-cases.mjs';
import { runCrafted, straceAvailable } from './crafted-lib.mjs';
import { fuzz } from './fuzz-lib.mjs';

const count = Number(process.argv[2] ?? 2000);
const seed = Number(process.argv[3] ?? 1);
const dir = mkdtempSync(join(tmpdir(), 'onnxpress-fuzz-'));
const started = Date.now();
try {
  const trace = straceAvailable();
  console.log(
    `crafted cases (${CRAFTED.length}), ${trace ? 'every file access traced with strace' : 'strace not installed: files checked from outside only'}`,
  );
  const crafted = await runCrafted(CRAFTED, { root: join(dir, 'crafted'), trace, log: (m) => console.log(`  ${m}`) });
  const failed = crafted.filter((r) => r.problems.length > 0);
  const kinds = [...new Set(CRAFTED.map((c) => c.kind))];
  console.log(
    `crafted: ${crafted.length - failed.length} of ${crafted.length} held (${kinds.map((k) => `${k} ${crafted.filter((r) => r.kind === k).length}`).join(', ')}), ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );

  const s = await fuzz({ count, seed, cliEvery: 40, dir: join(dir, 'mutations'), log: (m) => console.log(m) });
  console.log(
    `${s.cases} mutated models (seed ${seed}), ${s.cases * 3} in-process runs + ${s.cliRuns} CLI runs with ONNX Runtime, ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  console.log(`  results: ${s.ok} succeeded, ${s.refused} refused with a one-line error`);
  console.log(`  ${s.crashes.length} crashes or internal errors, ${s.hangs.length} hangs, ${s.partial.length} partial outputs`);
  for (const c of [...s.crashes, ...s.hangs, ...s.partial].slice(0, 20)) console.log(`    ${c}`);
  console.log(
    `${failed.length + s.crashes.length + s.hangs.length + s.partial.length === 0 ? 'PASS' : 'FAIL'}: ${failed.length} crafted cases failed; ${s.crashes.length + s.hangs.length + s.partial.length} mutation failures`,
  );
  process.exitCode = failed.length + s.crashes.length + s.hangs.length + s.partial.length > 0 ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
