// Shared test helpers: fixture paths, scratch folders, and running the CLI as a user would.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect } from 'vitest';

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

/** Read options low enough that even the small fixtures are read lazily (tensor payloads left in the file). */
export const LAZY_READ = { lazyFileBytes: 1, lazyTensorBytes: 1024 };

/**
 * Compresses `input` with one pass on 1, 2 and 3 kernel threads and expects byte-identical files
 * and the same per-tensor figures. Returns the single-thread run's summaries.
 */
export async function expectSameForThreads(
  input: string,
  family: string,
  spec: string,
  read?: { lazyFileBytes: number; lazyTensorBytes: number },
) {
  const { compress } = await import('../src/pipeline/compress.js');
  const { parseStep } = await import('../src/pipeline/registry.js');
  const { readFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'onnxpress-threads-'));
  try {
    const one = join(dir, 'one.onnx');
    const a = await compress(input, one, { steps: [parseStep(family, spec)], threads: 1, read });
    // Two threads: this one and a worker; three: and two workers.
    for (const threads of [2, 3]) {
      const other = join(dir, `${threads}.onnx`);
      const b = await compress(input, other, { steps: [parseStep(family, spec)], threads, read });
      const tag = `${family} ${spec}${read ? ' (lazy)' : ''}, ${threads} threads`;
      expect(Buffer.compare(readFileSync(one), readFileSync(other)), tag).toBe(0);
      expect(b.passes[0]!.tensors, tag).toEqual(a.passes[0]!.tensors);
    }
    return a.passes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Cosine similarity of two equally long vectors, computed here from its definition (the tests' own oracle, not the report's). */
export function cosine(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): number {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Number(a[i]),
      y = Number(b[i]);
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / Math.sqrt(aa * bb);
}

/** A .npy file (format 1.0) holding float32 data of the given shape. */
export function npy(values: Float32Array, shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header = header.padEnd(118 - 10, ' ') + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(values.buffer)]);
}
