// The two parts `auto` uses (src/runtime/split.ts): disjoint, together the whole data, inputs, stored
// outputs and labels cut at the same sample.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import type { NamedArray } from '../../src/io/testdata.js';
import type { EvalBatch, EvalData } from '../../src/runtime/data.js';
import { splitData } from '../../src/runtime/split.js';

/** A batch whose samples carry their number: sample s of the whole data has values s·10 … s·10 + 2. */
function batch(first: number, samples: number, labels?: number[]): EvalBatch {
  const input: NamedArray = {
    name: 'x',
    dtype: 1,
    dims: [samples, 3],
    data: Float32Array.from({ length: samples * 3 }, (_, i) => (first + Math.floor(i / 3)) * 10 + (i % 3)),
  };
  const expected: NamedArray = {
    name: 'y',
    dtype: 1,
    dims: [samples, 1],
    data: Float32Array.from({ length: samples }, (_, i) => first + i),
  };
  return { inputs: [input], expected: [expected], ...(labels ? { labels } : {}), source: `set_${first}` };
}

function data(batches: EvalBatch[], labels?: EvalData['labels']): EvalData {
  return {
    kind: 'test-data-sets',
    source: 'data',
    batches,
    samples: batches.reduce((n, b) => n + b.inputs[0]!.dims[0]!, 0),
    ...(labels ? { labels } : {}),
  };
}

/** The sample numbers a part holds, from its inputs. */
const sampleNumbers = (d: EvalData) =>
  d.batches.flatMap((b) =>
    Array.from(b.inputs[0]!.data as Float32Array)
      .filter((_, i) => i % 3 === 0)
      .map((v) => v / 10),
  );

describe('splitData', () => {
  it('one batch: the first half of its samples to choose on, the rest held out, labels and outputs cut alike', () => {
    const whole = data([batch(0, 5, [10, 11, 12, 13, 14])], {
      source: 'labels.txt',
      values: Int32Array.from([0, 0, 1, 1, 1, 1, 2, 3, 3, 4]),
      perLine: [2, 4, 1, 2, 1],
    });
    const { tuning, 'held-out': heldOut } = splitData(whole);
    expect(sampleNumbers(tuning)).toEqual([0, 1, 2]);
    expect(sampleNumbers(heldOut)).toEqual([3, 4]);
    expect([tuning.samples, heldOut.samples]).toEqual([3, 2]);
    expect(Array.from(tuning.batches[0]!.expected[0]!.data as Float32Array)).toEqual([0, 1, 2]);
    expect(Array.from(heldOut.batches[0]!.expected[0]!.data as Float32Array)).toEqual([3, 4]);
    expect(tuning.batches[0]!.labels).toEqual([10, 11, 12]);
    expect(heldOut.batches[0]!.labels).toEqual([13, 14]);
    // A line a sample: the first three lines' labels, then the last two lines'.
    expect(Array.from(tuning.labels!.values)).toEqual([0, 0, 1, 1, 1, 1, 2]);
    expect(tuning.labels!.perLine).toEqual([2, 4, 1]);
    expect(Array.from(heldOut.labels!.values)).toEqual([3, 3, 4]);
    expect(heldOut.labels!.perLine).toEqual([2, 1]);
    expect(tuning.part).toEqual({ part: 'tuning', range: 'samples 1–3 of 5', other: 'samples 4–5 of 5' });
    expect(heldOut.part).toEqual({ part: 'held-out', range: 'samples 4–5 of 5', other: 'samples 1–3 of 5' });
  });

  it('several batches: whole batches, the first ⌈n/2⌉ to choose on; flat labels cut after their samples', () => {
    const whole = data([batch(0, 2), batch(2, 3), batch(5, 1)], { source: 'labels.npy', values: Int32Array.from([0, 1, 2, 3, 4, 5]) });
    const { tuning, 'held-out': heldOut } = splitData(whole);
    expect(tuning.batches.map((b) => b.source)).toEqual(['set_0', 'set_2']);
    expect(heldOut.batches.map((b) => b.source)).toEqual(['set_5']);
    expect(Array.from(tuning.labels!.values)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(heldOut.labels!.values)).toEqual([5]);
    expect(heldOut.part).toEqual({ part: 'held-out', range: 'batch 3 of 3', other: 'batches 1–2 of 3' });
  });

  it('the parts are disjoint and together the whole data, for any size', () => {
    for (const sizes of [[2], [3], [360], [1, 1], [4, 4, 4, 4], [7, 1, 2]]) {
      let first = 0;
      const whole = data(
        sizes.map((n) => {
          const b = batch(first, n);
          first += n;
          return b;
        }),
      );
      const { tuning, 'held-out': heldOut } = splitData(whole);
      const a = sampleNumbers(tuning),
        b = sampleNumbers(heldOut);
      expect(a.length, String(sizes)).toBeGreaterThan(0);
      expect(b.length, String(sizes)).toBeGreaterThan(0);
      expect(a.filter((s) => b.includes(s))).toEqual([]);
      expect([...a, ...b]).toEqual(Array.from({ length: first }, (_, i) => i));
    }
  });

  it('refuses what cannot be split: one sample, or labels that do not divide between the samples', () => {
    expect(() => splitData(data([batch(0, 1)]))).toThrow(UsageError);
    expect(() => splitData(data([batch(0, 1)]))).toThrow(/one sample cannot be split/);
    expect(() => splitData(data([batch(0, 4)], { source: 'l.npy', values: Int32Array.from([1, 2, 3]) }))).toThrow(
      /3 labels for 4 samples cannot be split/,
    );
  });
});
