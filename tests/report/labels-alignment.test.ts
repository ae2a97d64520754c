// Multi-batch evaluation with a labels file (issue 20 item 7): the labels are consumed in data
// order across batches (batches in test_data_set_N order, N numeric), never reset per batch. The
// oracle is computed here: the digits model run once in ONNX Runtime on all 360 images, its argmax
// per row taken here, compared with labels.txt read here.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { readTestDataSet, type NamedArray } from '../../src/io/testdata.js';
import { makeTensor } from '../../src/ir/tensor.js';
import { evaluate } from '../../src/report/evaluate.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { fixture, scratch } from '../helpers.js';

const dir = scratch();
const MODEL = fixture('digits', 'model.onnx');
const IMAGES = readTestDataSet(fixture('digits', 'test_data_set_0')).inputs[0]!;
const LABELS = readFileSync(fixture('digits', 'labels.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map(Number);
const SAMPLES = 360,
  PIXELS = 64;

/** Writes `batches` test_data_set_N folders of consecutive images (and, with `beside`, each batch's labels.pb). */
function splitData(name: string, batches: number, beside?: number[]): string {
  const root = join(dir, name);
  const size = SAMPLES / batches;
  for (let b = 0; b < batches; b++) {
    const set = join(root, `test_data_set_${b}`);
    mkdirSync(set, { recursive: true });
    const data = (IMAGES.data as Float32Array).slice(b * size * PIXELS, (b + 1) * size * PIXELS);
    const t = makeTensor(IMAGES.name, 1, [size, ...IMAGES.dims.slice(1)], new Uint8Array(data.buffer));
    writeFileSync(join(set, 'input_0.pb'), encode('onnx.TensorProto', t));
    if (beside) {
      const labels = BigInt64Array.from(beside.slice(b * size, (b + 1) * size), BigInt);
      writeFileSync(join(set, 'labels.pb'), encode('onnx.TensorProto', makeTensor('labels', 7, [size], new Uint8Array(labels.buffer))));
    }
  }
  return root;
}

function labelsFile(name: string, labels: number[]): string {
  const path = join(dir, name);
  writeFileSync(path, labels.join('\n') + '\n');
  return path;
}

/** Fraction of rows whose argmax (first of equal maxima) is the label. */
function top1(logits: Float32Array, classes: number, labels: number[]): number {
  let right = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c]! > logits[i * classes + best]!) best = c;
    if (best === labels[i]) right++;
  }
  return right / labels.length;
}

async function topOne(data: string, labels?: string): Promise<{ reference: number; compressed: number; batches: number; samples: number }> {
  const e = await evaluate(MODEL, MODEL, { data, labels, runs: 0 });
  expect(e.accuracy.metric).toBe('top1');
  return {
    reference: e.accuracy.reference,
    compressed: e.accuracy.compressed,
    batches: e.accuracy.data.batches,
    samples: e.accuracy.data.samples,
  };
}

describe('labels across several batches', () => {
  let logits: Float32Array, classes: number;
  // Labels shifted by 7 samples: still one per sample, but not the sample's own.
  const SHIFTED = LABELS.map((_, i) => LABELS[(i + 7) % SAMPLES]!);

  beforeAll(async () => {
    expect(IMAGES.dims).toEqual([SAMPLES, 1, 8, 8]);
    expect(LABELS).toHaveLength(SAMPLES);
    const [out] = await run(await createSession(MODEL), [IMAGES as NamedArray]);
    logits = out!.data as Float32Array;
    classes = out!.dims[1]!;
  });

  it("the oracle: the model's top-1 on the 360 images, 353/360 (the fixture's figure)", async () => {
    expect(top1(logits, classes, LABELS)).toBe(353 / 360);
    const single = await topOne(fixture('digits', 'test_data_set_0'), fixture('digits', 'labels.txt'));
    expect(single).toEqual({ reference: 353 / 360, compressed: 353 / 360, batches: 1, samples: SAMPLES });
  });

  it('3 batches of 120 with labels.txt in data order: the single-batch figure exactly', async () => {
    const r = await topOne(splitData('three', 3), fixture('digits', 'labels.txt'));
    expect(r).toEqual({ reference: 353 / 360, compressed: 353 / 360, batches: 3, samples: SAMPLES });
  });

  it('12 batches of 30 (test_data_set_10 and _11 after _9): the same figure', async () => {
    const r = await topOne(splitData('twelve', 12), fixture('digits', 'labels.txt'));
    expect(r).toEqual({ reference: 353 / 360, compressed: 353 / 360, batches: 12, samples: SAMPLES });
  });

  it("each batch's own labels.pb beside its inputs: the same figure", async () => {
    const r = await topOne(splitData('beside', 3, LABELS));
    expect(r).toEqual({ reference: 353 / 360, compressed: 353 / 360, batches: 3, samples: SAMPLES });
  });

  it('a shifted labels file gives the lower accuracy computed here, over 3 and 12 batches', async () => {
    const expected = top1(logits, classes, SHIFTED);
    expect(expected).toBeLessThan(0.3);
    const shifted = labelsFile('shifted.txt', SHIFTED);
    for (const [name, n] of [
      ['three', 3],
      ['twelve', 12],
    ] as const) {
      const r = await topOne(join(dir, name), shifted);
      expect(r.reference, `${n} batches`).toBe(expected);
      expect(r.compressed, `${n} batches`).toBe(expected);
    }
    // And on one batch, the same.
    expect((await topOne(fixture('digits', 'test_data_set_0'), shifted)).reference).toBe(expected);
  });
});
