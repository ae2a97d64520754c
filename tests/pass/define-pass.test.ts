// definePass's option types, checked by compiling define-pass.types.ts: it compiles as it is, and
// each line marked `@ts-expect-error` is an error once the marks are gone (and no other line is).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, scratch } from '../helpers.js';

const dir = scratch();
const SOURCE = join(ROOT, 'tests', 'pass', 'define-pass.types.ts');

/** tsc (strict, as the project) on one file; the error lines it reports, 1-based. */
function compile(file: string): { code: number; errorLines: number[]; output: string } {
  const config = join(dir, `${file.replace(/\W/g, '_')}.tsconfig.json`);
  writeFileSync(
    config,
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        noUncheckedIndexedAccess: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
        paths: { vitest: [join(ROOT, 'node_modules', 'vitest')] },
      },
      files: [file],
    }),
  );
  const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', config], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const output = `${r.stdout}${r.stderr}`;
  const errorLines = [...output.matchAll(/define-pass[\w.-]*\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1]));
  return { code: r.status ?? -1, errorLines, output };
}

describe('definePass option types', () => {
  it('infer each option from its declaration: a wrong type is a compile error', () => {
    expect(compile(SOURCE)).toEqual({ code: 0, errorLines: [], output: '' });
    const text = readFileSync(SOURCE, 'utf8').split('\n');
    const marked = text.flatMap((line, i) => (/^\s*\/\/ @ts-expect-error/.test(line) ? [i + 2] : []));
    expect(marked.length).toBe(5);
    // The marks become blank comments (the line numbers stay): each marked line must fail.
    // The copy lives in the scratch folder: its imports of the sources become absolute.
    const unmarked = join(dir, 'define-pass-unmarked.types.ts');
    writeFileSync(unmarked, text.map((l) => l.replace('// @ts-expect-error', '//').replace("'../../src/", `'${ROOT}/src/`)).join('\n'));
    const r = compile(unmarked);
    expect(r.code).not.toBe(0);
    expect([...new Set(r.errorLines)]).toEqual(marked);
  });
});
