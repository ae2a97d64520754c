// The memory this process may use (fs/memory.ts), read from fake /proc and /sys trees, and what the
// writer does when a single-file output's tensors would not fit in it (pipeline/compress.ts).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { memoryLimit } from '../../src/fs/memory.js';
import { readModel } from '../../src/io/read.js';
import { tensorBytes } from '../../src/ir/tensor.js';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { fixture, leftoverTemps, scratch } from '../helpers.js';

const dir = scratch();
let trees = 0;

/** A root folder holding the given files (path → contents). */
function tree(files: Record<string, string>): string {
  const root = join(dir, `root${trees++}`) + '/';
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('memoryLimit', () => {
  it('takes the smallest cgroup v1 limit from the process up to the root', () => {
    const root = tree({
      'proc/self/cgroup': '5:cpu,cpuacct:/job\n4:memory:/job/step\n0::/\n',
      'sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
      'sys/fs/cgroup/memory/job/memory.limit_in_bytes': '1073741824\n',
      'sys/fs/cgroup/memory/job/step/memory.limit_in_bytes': '9223372036854771712\n',
    });
    expect(memoryLimit(root)).toEqual({ bytes: 2 ** 30, source: '/sys/fs/cgroup/memory/job/memory.limit_in_bytes' });
  });

  it('reads cgroup v2 memory.max, where "max" means no limit', () => {
    const root = tree({
      'proc/self/cgroup': '0::/user.slice/run.scope\n',
      'sys/fs/cgroup/user.slice/memory.max': 'max\n',
      'sys/fs/cgroup/user.slice/run.scope/memory.max': '536870912\n',
    });
    expect(memoryLimit(root)).toEqual({ bytes: 2 ** 29, source: '/sys/fs/cgroup/user.slice/run.scope/memory.max' });
    const unlimited = tree({ 'proc/self/cgroup': '0::/a\n', 'sys/fs/cgroup/a/memory.max': 'max\n' });
    expect(memoryLimit(unlimited)).toEqual({ bytes: totalmem(), source: 'the machine' });
  });

  it('is the machine memory where there is no cgroup file, and never more', () => {
    expect(memoryLimit(tree({}))).toEqual({ bytes: totalmem(), source: 'the machine' });
    const huge = tree({ 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/memory.max': String(totalmem() * 4) });
    expect(memoryLimit(huge).bytes).toBe(totalmem());
  });
});

describe('a single-file output larger than memory', () => {
  const model = fixture('charlm', 'model.onnx');
  const bytes = readModel(model).graph.initializer.reduce((n, t) => n + tensorBytes(t).byteLength, 0);
  const small = { bytes: Math.floor(bytes / 2), source: 'a test limit' };

  it('is refused up front with the reason and the flag to use, nothing written', async () => {
    const out = join(dir, 'refused.onnx');
    const run = compress(model, out, { steps: [parseStep('quantize', 'int8')], write: { externalData: false }, memoryLimit: small });
    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow(/single-file output would hold up to .* more than .* \(a test limit\).*--external-data/);
    expect(existsSync(out)).toBe(false);
    expect(leftoverTemps(dir)).toEqual([]);
  });

  it('gets an external data file when the choice is left to onnxpress, with the same tensors', async () => {
    const streamed = join(dir, 'auto.onnx');
    const single = join(dir, 'single.onnx');
    const r = await compress(model, streamed, { steps: [parseStep('quantize', 'int8')], memoryLimit: small });
    expect(r.output.files.map((f) => f.path.split('/').pop())).toEqual(['auto.onnx', 'auto.onnx.data']);
    await compress(model, single, { steps: [parseStep('quantize', 'int8')], memoryLimit: { bytes: bytes * 2, source: 'test' } });
    const byName = (path: string) =>
      new Map(readModel(path).graph.initializer.map((t) => [t.name!, Buffer.from(tensorBytes(t)).toString('base64')]));
    expect(byName(streamed)).toEqual(byName(single));
    expect(existsSync(`${single}.data`)).toBe(false);
  });
});
