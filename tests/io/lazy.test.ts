import { existsSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FileRange } from '../../src/ir/file-range.js';
import { InputError } from '../../src/errors.js';
import { readModel } from '../../src/io/read.js';
import { PrecopiedOutput, writeModel } from '../../src/io/write.js';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { inspectModel } from '../../src/report/inspect.js';
import { fixture, leftoverTemps, scratch } from '../helpers.js';

const dir = scratch();
const CHARLM = fixture('charlm', 'model.onnx');
// The char LM is 2.5 MB with 262 kB weights: thresholds low enough to read it lazily.
const lazy = { lazyFileBytes: 1 << 20, lazyTensorBytes: 64 << 10 };

describe('lazy reading of large files', () => {
  it('leaves the big payloads in the file and reads them when asked', () => {
    const model = readModel(CHARLM, lazy);
    const stored = model.graph.initializer.filter((t) => t.raw_data instanceof FileRange);
    expect(stored.length).toBeGreaterThan(10);
    expect(model.source!.buffer).toBeUndefined();
    expect(inspectModel(model).duplicates).toEqual(inspectModel(readModel(CHARLM)).duplicates);
  });

  it.each([
    [[] as [string, string][]],
    [[['quantize', 'int8']] as [string, string][]],
    [
      [
        ['prune', 'structured:ratio=0.3'],
        ['quantize', 'int4'],
      ] as [string, string][],
    ],
  ])('gives byte-identical outputs to an eager read (%j)', async (steps) => {
    const a = join(dir, `eager-${steps.length}.onnx`),
      b = join(dir, `lazy-${steps.length}.onnx`);
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

describe('copying unchanged tensor bytes on two threads', () => {
  const twoThreads = { threads: 2, parallelCopyFrom: 0 };

  it('writes the same bytes as one thread, where the tensors keep their offsets and where they move', () => {
    const bytes = readFileSync(CHARLM);
    // ir_version moved to the end: every tensor then lands 2 bytes before where it was read.
    const moved = join(dir, 'moved-source.onnx');
    writeFileSync(moved, Buffer.concat([bytes.subarray(2), bytes.subarray(0, 2)]));
    for (const source of [CHARLM, moved]) {
      const one = join(dir, 'copy-one.onnx'),
        two = join(dir, 'copy-two.onnx');
      writeModel(readModel(source, lazy), one, { threads: 1 });
      const seen: { offset: number; length: number; read: boolean }[] = [];
      writeModel(readModel(source, lazy), two, {
        ...twoThreads,
        onModelChunk: (offset, length, chunk) => seen.push({ offset, length, read: chunk !== undefined }),
      });
      expect(Buffer.compare(readFileSync(one), readFileSync(two))).toBe(0);
      // The big payloads went to the copy (never through this thread), and the pieces tile the file.
      expect(seen.filter((s) => !s.read).length).toBeGreaterThan(10);
      let end = 0;
      for (const s of [...seen].sort((a, b) => a.offset - b.offset)) {
        expect(s.offset).toBe(end);
        end += s.length;
      }
      expect(end).toBe(statSync(two).size);
      rmSync(one);
      rmSync(two);
    }
    expect(Buffer.compare(readFileSync(join(dir, 'moved-source.onnx')).subarray(0, 8), bytes.subarray(2, 10))).toBe(0);
  });

  it('says whether a round trip is identical when the copy moved the bytes', async () => {
    const r = await compress(CHARLM, join(dir, 'rt-two.onnx'), { read: lazy, threads: 2, write: { parallelCopyFrom: 0 } });
    expect(r.identical).toBe(true);
    expect(Buffer.compare(readFileSync(join(dir, 'rt-two.onnx')), readFileSync(CHARLM))).toBe(0);
    const bytes = readFileSync(CHARLM);
    const moved = join(dir, 'moved-again.onnx');
    writeFileSync(moved, Buffer.concat([bytes.subarray(2), bytes.subarray(0, 2)]));
    const m = await compress(moved, join(dir, 'moved-out.onnx'), { read: lazy, threads: 2, write: { parallelCopyFrom: 0 } });
    expect(m.identical).toBe(false);
  });

  it("starts copying a round trip's tensors as the model is read, and starts afresh where they move", async () => {
    const started = vi.spyOn(PrecopiedOutput, 'start');
    const aborted = vi.spyOn(PrecopiedOutput.prototype, 'abort');
    try {
      const out = join(dir, 'pre-out.onnx');
      const r = await compress(CHARLM, out, { read: lazy, threads: 2, write: { parallelCopyFrom: 0 } });
      expect(started.mock.results[0]!.value).toBeInstanceOf(PrecopiedOutput);
      expect(aborted).not.toHaveBeenCalled();
      expect(r.identical).toBe(true);
      expect(Buffer.compare(readFileSync(out), readFileSync(CHARLM))).toBe(0);
      // Every tensor 2 bytes earlier than in the source: the copy in flight is dropped, and the
      // output is what one thread writes.
      const bytes = readFileSync(CHARLM);
      const moved = join(dir, 'pre-moved.onnx');
      writeFileSync(moved, Buffer.concat([bytes.subarray(2), bytes.subarray(0, 2)]));
      const two = join(dir, 'pre-moved-two.onnx'),
        one = join(dir, 'pre-moved-one.onnx');
      await compress(moved, two, { read: lazy, threads: 2, write: { parallelCopyFrom: 0 } });
      expect(started.mock.results[1]!.value).toBeInstanceOf(PrecopiedOutput);
      expect(aborted).toHaveBeenCalledTimes(1);
      await compress(moved, one, { read: lazy, threads: 1 });
      expect(Buffer.compare(readFileSync(one), readFileSync(two))).toBe(0);
      expect(leftoverTemps(dir)).toEqual([]);
    } finally {
      started.mockRestore();
      aborted.mockRestore();
    }
  });

  it("stops the round trip's early copy and leaves nothing behind when the model turns out invalid", async () => {
    // A node reading a value nothing produces: found by validation, after the copy started.
    const model = readModel(CHARLM);
    model.graph.node[0]!.input[0] = 'nowhere';
    const broken = join(dir, 'broken.onnx');
    writeModel(model, broken, { threads: 1 });
    const out = join(dir, 'broken-out.onnx');
    const aborted = vi.spyOn(PrecopiedOutput.prototype, 'abort');
    try {
      await expect(compress(broken, out, { read: lazy, threads: 2, write: { parallelCopyFrom: 0 } })).rejects.toThrow(/nothing produces/);
      expect(aborted).toHaveBeenCalledTimes(1);
    } finally {
      aborted.mockRestore();
    }
    expect(existsSync(out)).toBe(false);
    expect(leftoverTemps(dir)).toEqual([]);
  });

  it('copies external data on two threads, byte for byte', () => {
    const first = join(dir, 'ext-a.onnx');
    writeModel(readModel(CHARLM), first, { externalData: true, sizeThreshold: 1024 });
    const second = join(dir, 'ext-b.onnx');
    writeModel(readModel(first), second, { ...twoThreads });
    expect(Buffer.compare(readFileSync(`${first}.data`), readFileSync(`${second}.data`))).toBe(0);
    expect(statSync(second).size).toBe(statSync(first).size);
  });

  it('fails with a clear error and leaves nothing behind when the source shrinks before the copy', () => {
    const source = join(dir, 'shrinking.onnx');
    writeFileSync(source, readFileSync(CHARLM));
    const model = readModel(source, lazy);
    truncateSync(source, 1 << 20);
    const out = join(dir, 'shrunk-out.onnx');
    expect(() => writeModel(model, out, twoThreads)).toThrow(InputError);
    expect(existsSync(out)).toBe(false);
    expect(leftoverTemps(dir)).toEqual([]);
  });
});
