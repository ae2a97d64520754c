// A pass written against the IR's data API (issue 20): it reads values and sets new bytes with
// setData, and does nothing else — no bookkeeping of where the bytes came from — and its new bytes
// reach the written file whether the model was read into memory, read lazily (payloads left in the
// file), or kept its weights in external data, and whether the output has external data or not.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { DataType } from '../../src/ir/onnx.js';
import { fileRangeOf, setData } from '../../src/ir/data.js';
import type { Model } from '../../src/ir/model.js';
import { floatValues } from '../../src/ir/tensor.js';
import { compress } from '../../src/pipeline/compress.js';
import type { Pass } from '../../src/pass/pass.js';
import type { PipelineStep } from '../../src/pipeline/registry.js';
import { LAZY_READ, fixture, scratch } from '../helpers.js';

const dir = scratch();

/** The toy pass: every float32 initializer negated. */
const negate: Pass = {
  family: 'share',
  method: 'negate',
  description: 'negates every float32 initializer',
  options: {},
  run(model: Model) {
    const tensors = [];
    for (const t of model.graph.initializer) {
      if (t.data_type !== DataType.FLOAT) continue;
      const values = Float32Array.from(floatValues(t), (v) => -v);
      setData(t, new Uint8Array(values.buffer));
      tensors.push({
        name: t.name ?? '',
        shape: [],
        dtypeBefore: 'float32',
        dtypeAfter: 'float32',
        bytesBefore: values.byteLength,
        bytesAfter: values.byteLength,
      });
    }
    return { pass: 'share', method: 'negate', options: {}, tensors, skipped: [], bytesBefore: 0, bytesAfter: 0, notes: [] };
  },
};
const step: PipelineStep = { pass: negate, options: {}, spec: 'negate' };

/** Each float32 initializer's values, by name, read from a fresh copy of the file. */
function floatsOf(path: string): Map<string, Float32Array> {
  const model = readModel(path);
  const out = new Map<string, Float32Array>();
  for (const t of model.graph.initializer) if (t.data_type === DataType.FLOAT) out.set(t.name ?? '', Float32Array.from(floatValues(t)));
  return out;
}

const cases = [
  { name: 'in memory', input: fixture('digits', 'model.onnx'), read: undefined, externalData: false },
  { name: 'read lazily', input: fixture('digits', 'model.onnx'), read: LAZY_READ, externalData: false },
  { name: 'external data in, one file out', input: fixture('conformance', 'external', 'model.onnx'), read: undefined, externalData: false },
  { name: 'external data in and out', input: fixture('conformance', 'external', 'model.onnx'), read: undefined, externalData: true },
  { name: 'read lazily, external data out', input: fixture('digits', 'model.onnx'), read: LAZY_READ, externalData: true },
];

describe('a pass that only calls setData', () => {
  it.each(cases)('writes its new bytes: $name', async ({ name, input, read, externalData }) => {
    const before = floatsOf(input);
    expect(before.size).toBeGreaterThan(0);
    if (read) {
      // The lazy read does leave payloads in the file, so the case tests what it says.
      const lazy = readModel(input, read);
      expect(lazy.graph.initializer.some((t) => fileRangeOf(t) !== undefined)).toBe(true);
    }
    const out = join(dir, `${name.replace(/\W+/g, '-')}.onnx`);
    await compress(input, out, { steps: [step], read, write: { externalData, sizeThreshold: 64 } });
    const after = floatsOf(out);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [tensor, values] of before) {
      const now = after.get(tensor)!;
      expect(now.length).toBe(values.length);
      for (let i = 0; i < values.length; i++) expect(Object.is(now[i], -values[i]!)).toBe(true);
    }
    // The input is untouched.
    expect(floatsOf(input)).toEqual(before);
  });
});
