// Loads the bundled command line (dist/onnxpress.cjs) through V8's code cache, which the build
// writes beside it (scripts/bundle.mjs) after running a few commands: V8 then neither parses the
// 0.75 MB bundle nor compiles the functions those commands ran. BERT-base int4 and the plain round
// trip start ~20 ms sooner. A cache V8 rejects (another Node version, other V8 flags, a rebuilt
// bundle) costs nothing but that time: the bundle is compiled as usual.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

export const bundlePath = fileURLToPath(new URL('../dist/onnxpress.cjs', import.meta.url));
export const cachePath = `${bundlePath}.cache`;

/** The command line's exports, and the compiled script (whose code cache the build writes). */
export function loadCli({ useCache = true } = {}) {
  let cachedData;
  if (useCache) {
    try {
      cachedData = readFileSync(cachePath);
    } catch {
      // No cache (a build without one): compile as usual.
    }
  }
  // Functions from a code cache cannot call import(): the bundle loads what it needs by require.
  const script = new Script(Module.wrap(readFileSync(bundlePath, 'utf8')), { filename: bundlePath, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
  return { cli: module.exports, script };
}
