import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBytes } from '../../src/io/lazy.js';
import { readModel } from '../../src/io/read.js';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { inspectModel } from '../../src/report/inspect.js';
import { fixture, scratch } from '../helpers.js';

const dir = scratch();
const CHARLM = fixture('charlm', 'model.onnx');
// The char LM is 2.5 MB with 262 kB weights: thresholds low enough to read it lazily.
const lazy = { lazyFileBytes: 1 << 20, lazyTensorBytes: 64 << 10 };

describe('lazy reading of large files', () => {
  it('leaves the big payloads in the file and reads them when asked', () => {
    const model = readModel(CHARLM, lazy);
    const stored = model.graph.initializer.filter((t) => (t.raw_data as unknown) instanceof FileBytes);
    expect(stored.length).toBeGreaterThan(10);
    expect(model.source!.buffer).toBeUndefined();
    expect(inspectModel(model).duplicates).toEqual(inspectModel(readModel(CHARLM)).duplicates);
  });

  it.each([[[] as [string, string][]], [[['quantize', 'int8']] as [string, string][]], [[['prune', 'structured:ratio=0.3'], ['quantize', 'int4']] as [string, string][]]])(
    'gives byte-identical outputs to an eager read (%j)', async (steps) => {
      const a = join(dir, `eager-${steps.length}.onnx`), b = join(dir, `lazy-${steps.length}.onnx`);
      await compress(CHARLM, a, { steps: steps.map(([f, s]) => parseStep(f, s)) });
      const r = await compress(CHARLM, b, { steps: steps.map(([f, s]) => parseStep(f, s)), read: lazy });
      expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
      if (steps.length === 0) expect(r.identical).toBe(true);
    });

  it('notices a difference outside the copied tensor bytes without reading them twice', async () => {
    // The same model with ir_version (field 1) moved after the graph: valid protobuf that our
    // encoder writes back in field order, so the output differs only in the header bytes.
    const bytes = readFileSync(CHARLM);
    const [tag, irVersion] = [bytes[0]!, bytes[1]!];
    expect(tag).toBe(0x08);
    expect(irVersion).toBeLessThan(0x80);
    const moved = join(dir, 'reordered.onnx');
    writeFileSync(moved, Buffer.concat([bytes.subarray(2), Buffer.from([tag, irVersion])]));
    const r = await compress(moved, join(dir, 'reordered-out.onnx'), { read: lazy });
    expect(r.identical).toBe(false);
    const again = await compress(CHARLM, join(dir, 'plain-out.onnx'), { read: lazy });
    expect(again.identical).toBe(true);
    expect(Buffer.compare(readFileSync(join(dir, 'plain-out.onnx')), bytes)).toBe(0);
  });
});
