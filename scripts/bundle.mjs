// Writes what the built code loads at start: onnx.proto as JSON, and the command line bundled into
// dist/onnxpress.mjs: one file loads in ~0.08 s where the ~60 modules
// of dist/ took ~0.15 s (module resolution and file reads), which every command pays. The library
// (dist/index.js) stays unbundled. onnxruntime-node is a native addon and stays external.
import { writeFileSync } from 'node:fs';
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

await build({ ...common, entryPoints: ['dist/cli/main.js'], outfile: 'dist/onnxpress.mjs' });
// The kernel worker too: each worker thread loads it, ~30 ms sooner than its dozen modules.
await build({ ...common, entryPoints: ['dist/kernels/worker.js'], outfile: 'dist/kernel-worker.mjs' });
