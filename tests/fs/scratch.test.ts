// Scratch folders are removed when the run is done with them, and at the latest when the process
// exits, however it exits (an error thrown to the top, process.exit on a signal).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { liveScratchDirs, makeScratchDir, removeScratchDir } from '../../src/fs/scratch.js';
import { packagePath } from '../../src/paths.js';

const scratchModule = packagePath('dist', 'fs', 'scratch.js');

/** Runs `body` in a fresh Node process that imported makeScratchDir; returns the folder it printed. */
function inChild(body: string): string {
  const script = `import { makeScratchDir } from ${JSON.stringify(scratchModule)};
import { writeFileSync } from 'node:fs';
const dir = makeScratchDir('test-exit');
writeFileSync(dir + '/probe.onnx', 'x');
console.log(dir);
${body}`;
  try {
    return execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch (e) {
    return String((e as { stdout: string }).stdout).trim();
  }
}

describe('scratch folders', () => {
  it('are made empty in the temporary folder and removed with their files', () => {
    const dir = makeScratchDir('test');
    expect(dir.startsWith(join(tmpdir(), 'onnxpress-test-'))).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
    writeFileSync(join(dir, 'a.onnx'), 'x');
    expect(liveScratchDirs()).toContain(dir);
    removeScratchDir(dir);
    expect(existsSync(dir)).toBe(false);
    expect(liveScratchDirs()).not.toContain(dir);
  });

  it.each([
    ['a normal exit', ''],
    ['process.exit, as on a signal', 'process.exit(130);'],
    ['an error thrown to the top', "throw new Error('boom');"],
  ])('are gone after %s', (_how, body) => {
    const dir = inChild(body);
    expect(dir).toMatch(/onnxpress-test-exit-/);
    expect(existsSync(dir)).toBe(false);
  });
});
