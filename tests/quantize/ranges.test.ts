// Static calibration's activation ranges (src/quantize/ranges.ts), measured in ONNX Runtime.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { makeNode } from '../../src/ir/build.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { calibrateRanges, type RangeMethod } from '../../src/quantize/ranges.js';
import { fixture, npy, scratch } from '../helpers.js';
import { graph, model, save, vi } from '../convert/helpers.js';

const dir = scratch();

describe('calibrated activation ranges', () => {
  it('are the same whatever ONNX Runtime’s threads and however the samples are cut into runs', async () => {
    const model = readModel(fixture('digits', 'model.onnx'));
    const names = model.graph.node.map((n) => n.output[0]!);
    const data = fixture('digits', 'test_data_set_1');
    // Percentile: the extremes reduced in the model, then the histograms of the values themselves.
    const base = { data, method: 'percentile' as RangeMethod, percentile: 99, symmetric: false };
    // One sample a run on one thread; all 64 in one run on two.
    const oneByOne = await calibrateRanges(model, names, { ...base, threads: 1, batchBytes: 1 });
    const whole = await calibrateRanges(model, names, { ...base, threads: 2, batchBytes: Infinity });
    expect(oneByOne.ranges.size).toBeGreaterThan(5);
    expect([...oneByOne.ranges]).toEqual([...whole.ranges]);
  });

  it("measure only a value's finite elements where it holds −∞ (an attention mask added)", async () => {
    const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
    const nodes = [makeNode('Add', ['x', 'mask'], ['masked'], 'add'), makeNode('MatMul', ['masked', 'W'], ['y'], 'matmul')];
    const initializers = [makeTensor('mask', 1, [4], f32([0, -Infinity, 0, 0])), makeTensor('W', 1, [4, 2], f32([1, 0, 0, 1, 1, 0, 0, 1]))];
    const proto = model(graph(nodes, [vi('x', ['n', 4])], [vi('y', ['n', 2])], initializers), 17, {
      ir_version: 8,
      producer_name: 'onnxpress-test',
    });
    const path = save(join(dir, 'masked.onnx'), proto);
    const x = Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2.5 + i / 10);
    const data = join(dir, 'x.npy');
    writeFileSync(data, npy(x, [3, 4]));
    const { ranges } = await calibrateRanges(readModel(path), ['x', 'masked'], {
      data,
      method: 'minmax',
      percentile: 99.999,
      symmetric: false,
    });
    const finite = [...x].filter((_, i) => i % 4 !== 1);
    expect(ranges.get('masked')).toEqual({ min: Math.min(...finite), max: Math.max(...finite) });
    expect(ranges.get('x')).toEqual({ min: Math.min(...x), max: Math.max(...x) });
  });
});
