// Shared test helpers: fixture paths, scratch folders, and running the CLI as a user would.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
export const FIXTURES = join(ROOT, 'fixtures');
export const fixture = (...parts: string[]) => join(FIXTURES, ...parts);

/** A scratch folder removed after the file's tests. */
export function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'onnxpress-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], cwd = ROOT): CliResult {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'onnxpress'), ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Files in a folder whose names mark them as temporary outputs. */
export function leftoverTemps(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes('.tmp-'));
}

/** Every model.onnx under fixtures/. */
export function fixtureModels(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.onnx')) out.push(p);
    }
  };
  walk(FIXTURES);
  return out.sort();
}
