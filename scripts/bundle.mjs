// Writes what the built code loads at start: onnx.proto as JSON, and the command line bundled into
// dist/onnxpress.cjs with its code cache: one file loads in ~0.08 s where the ~60 modules
// of dist/ took ~0.15 s (module resolution and file reads), which every command pays. The library
// (dist/index.js) stays unbundled. onnxruntime-node is a native addon and stays external.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { schemaJson } from '../dist/io/schema.js';

// onnx.proto as protobufjs's JSON: the codec loads it in ~1 ms instead of parsing the .proto (~15 ms).
writeFileSync('dist/io/onnx.proto.json', schemaJson());

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['onnxruntime-node'],
  // CommonJS dependencies bundled into an ES module still call require() for Node's own modules.
  banner: { js: "import { createRequire as __onnxpressRequire } from 'node:module'; const require = __onnxpressRequire(import.meta.url);" },
  logLevel: 'warning',
};

// The command line as CommonJS, so that bin/load-cli.mjs can load it through a vm.Script with V8's
// code cache (ES modules have no code cache API in Node 20).
await build({
  ...common,
  format: 'cjs',
  banner: { js: 'var __onnxpressUrl = require("node:url").pathToFileURL(__filename).href;' },
  define: { 'import.meta.url': '__onnxpressUrl' },
  entryPoints: ['dist/cli/main.js'],
  outfile: 'dist/onnxpress.cjs',
});
// The kernel worker too: each worker thread loads it, ~30 ms sooner than its dozen modules.
await build({ ...common, entryPoints: ['dist/kernels/worker.js'], outfile: 'dist/kernel-worker.mjs' });
// The ONNX Runtime child process (src/runtime/child.ts), forked for every evaluation.
await build({ ...common, entryPoints: ['dist/runtime/child.js'], outfile: 'dist/ort-child.mjs' });
rmSync('dist/onnxpress.mjs', { force: true });
await writeCodeCache();

/**
 * Runs the commands users run most (the bundled char LM: int8, int4 on two threads, the plain
 * round trip) in this process, then writes V8's code cache of the bundle, which then holds the
 * functions they compiled.
 */
async function writeCodeCache() {
  const { loadCli, cachePath } = await import('../bin/load-cli.mjs');
  rmSync(cachePath, { force: true });
  const { cli, script } = loadCli({ useCache: false });
  const dir = mkdtempSync(join(tmpdir(), 'onnxpress-cache-'));
  const model = 'fixtures/charlm/model.onnx';
  const write = process.stdout.write;
  process.stdout.write = () => true;
  try {
    for (const args of [['--quantize', 'int8'], ['--quantize', 'int4', '--threads', '2'], []]) {
      await cli.main(['node', 'onnxpress', 'compress', model, '-o', join(dir, 'out.onnx'), '--force', ...args]);
    }
  } finally {
    process.stdout.write = write;
    rmSync(dir, { recursive: true, force: true });
  }
  if (process.exitCode) throw new Error('the commands run for the code cache failed');
  writeFileSync(cachePath, script.createCachedData());
}
