// Files the code needs at run time (the worker script, the WebAssembly kernels, the schema, the CLI)
// are found from the package's root, because the code runs from three places: src/ under the tests,
// dist/ as compiled, and dist/onnxpress.cjs as the bundled command line.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder holding onnxpress's package.json. */
export function packageRoot(): string {
  if (root) return root;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'onnxpress') return (root = dir);
    if (dirname(dir) === dir) throw new Error('onnxpress: cannot find its own package.json');
  }
}

/** A path inside the package. */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
