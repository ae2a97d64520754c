// The layers of docs/ARCHITECTURE.md, checked from the sources: every import of every src/**/*.ts
// (static import, export … from, dynamic import() and import() types) resolved to its folder, and
// each folder's imports held against the folders below it.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

/**
 * Top to bottom: a folder (or a file directly in src/, by its name) imports only from the rows
 * below its own. Folders in one row are peers and import nothing from each other: the pass
 * folders share only what lies below them.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['index'],
  ['cli'],
  ['sweep'],
  ['pipeline'],
  ['report', 'conformance'],
  ['prune', 'quantize', 'share'],
  ['pass'],
  ['convert'],
  ['runtime'],
  ['kernels'],
  ['io'],
  ['ir'],
  ['fs'],
  ['errors', 'paths', 'version'],
];

/** Packages only one folder may load: the terminal bar is the CLI's, ONNX Runtime is loaded only by runtime/. */
const PACKAGE_OWNERS: Record<string, string> = { 'cli-progress': 'cli', 'onnxruntime-node': 'runtime' };

const rowOf = new Map(LAYERS.flatMap((row, i) => row.map((unit) => [unit, i] as const)));

/** What `unit` may import: everything in the rows below its own. */
const MAY_IMPORT: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  LAYERS.flatMap((row, i) => row.map((unit) => [unit, new Set(LAYERS.slice(i + 1).flat())] as const)),
);

/** The folder under src/ a file is in, or a file's own name when it sits in src/ itself. */
function unitOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? parts[0]! : parts[0]!.replace(/\.ts$/, '');
}

/** The source with comments blanked (strings kept, so that a `//` inside one is not taken for a comment). */
function withoutComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      out += ' ';
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const IMPORT_FORMS = [
  /\b(?:import|export)\b[^;'"`]*?\bfrom\s*(['"])([^'"]+)\1/g, // import … from, export … from
  /\bimport\s*(['"])([^'"]+)\1/g, // import 'x' (for its side effects)
  /\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g, // import('x'): dynamic imports and import types
];

/** The module specifiers a source imports, in every form. */
function importsOf(text: string): string[] {
  const code = withoutComments(text);
  return IMPORT_FORMS.flatMap((form) => [...code.matchAll(form)].map((m) => m[2]!));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(path) : e.name.endsWith('.ts') ? [path] : [];
  });
}

interface Edge {
  from: string;
  to: string;
}

function edges(): Edge[] {
  return sourceFiles(SRC).flatMap((file) =>
    importsOf(readFileSync(file, 'utf8')).map((spec) => ({
      from: file,
      to: spec.startsWith('.') ? resolve(dirname(file), spec).replace(/\.js$/, '.ts') : spec,
    })),
  );
}

const shown = (path: string) => (path.startsWith('/') ? relative(ROOT, path) : path);

/** Each import that breaks a rule, once, as `src/a/b.ts → src/c/d.ts` (a package by its name). */
function violations(all: Edge[] = edges()): string[] {
  const found = new Set<string>();
  for (const { from, to } of all) {
    const unit = unitOf(from);
    if (!to.startsWith('/')) {
      const pkg = to.startsWith('@') ? to.split('/').slice(0, 2).join('/') : to.split('/')[0]!;
      if (PACKAGE_OWNERS[pkg] !== undefined && PACKAGE_OWNERS[pkg] !== unit)
        found.add(`${shown(from)} → ${to} (only ${PACKAGE_OWNERS[pkg]}/ loads it)`);
      continue;
    }
    const target = unitOf(to);
    if (target === unit) continue;
    if (!rowOf.has(unit)) found.add(`${shown(from)} → ${shown(to)} (${unit} is in no layer)`);
    else if (!MAY_IMPORT.get(unit)!.has(target)) found.add(`${shown(from)} → ${shown(to)}`);
  }
  return [...found];
}

describe('layers', () => {
  it('reads every form of import, and nothing in comments', () => {
    const text = [
      "import a from './a.js';",
      "export { b } from './b.js';",
      "export * from './c.js';",
      "import type { D } from './d.js';",
      "import './e.js';",
      "const f = await import('./f.js');",
      "type G = import('./g.js').G;",
      "// import x from './comment.js'",
      "/* import y from './block.js' */",
      "import {\n  h,\n  type H,\n} from './h.js';",
      "const url = 'http://example.com'; import i from './i.js';",
    ].join('\n');
    expect(importsOf(text).sort()).toEqual(['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js', './g.js', './h.js', './i.js']);
  });

  it('places every folder of src/ in a layer', () => {
    const units = new Set(sourceFiles(SRC).map(unitOf));
    expect([...units].filter((u) => !rowOf.has(u))).toEqual([]);
  });

  it('finds the imports of the sources', () => {
    const all = edges();
    expect(all.length).toBeGreaterThan(500);
    expect(all.some((e) => e.to === 'node:fs')).toBe(true);
  });

  it('keeps every import pointing down the layers', () => {
    const found = violations();
    if (found.length > 0) console.log(`${found.length} imports against the layers:\n${found.join('\n')}`);
    expect(found).toEqual([]);
  });
});
