import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { decodeModel, readModel } from '../../src/io/read.js';
import { fileRangeOf } from '../../src/ir/data.js';
import type { FileRange } from '../../src/ir/file-range.js';
import type { Model } from '../../src/ir/model.js';
import { forEachTensor } from '../../src/ir/walk.js';
import { writeModel } from '../../src/io/write.js';
import { readTestDataSet } from '../../src/io/testdata.js';
import { InputError, UsageError } from '../../src/errors.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { fixture, leftoverTemps, scratch } from '../helpers.js';

const dir = scratch();
const EXTERNAL = fixture('conformance', 'external');

/** Copies the external-data fixture into a folder, with its locations rewritten by `relocate`. */
function externalCopy(name: string, relocate: (location: string) => string): string {
  const target = join(dir, name);
  mkdirSync(target, { recursive: true });
  for (const f of ['weights_a.bin', 'weights_b.bin']) copyFileSync(join(EXTERNAL, f), join(target, f));
  // Decoded, not read: readModel resolves the locations (and refuses the bad ones these tests write).
  const proto = decodeModel(readFileSync(join(EXTERNAL, 'model.onnx')), 'external');
  for (const t of proto.graph!.initializer) for (const e of t.external_data) if (e.key === 'location') e.value = relocate(e.value!);
  writeFileSync(join(target, 'model.onnx'), encode('onnx.ModelProto', proto));
  return join(target, 'model.onnx');
}

/** The tensors' data still in external data files of the model read. */
function externalRanges(model: Model): FileRange[] {
  const ranges: FileRange[] = [];
  forEachTensor(model.proto, ({ tensor }) => {
    const range = fileRangeOf(tensor);
    if (range?.external) ranges.push(range);
  });
  return ranges;
}

async function outputsOf(path: string, setDir: string) {
  const session = await createSession(path);
  return run(
    session,
    readTestDataSet(setDir).inputs.map((a, i) => ({ ...a, name: session.inputNames[i]! })),
  );
}

describe('readModel', () => {
  const bad: [string, () => string, RegExp][] = [
    ['a missing file', () => join(dir, 'nope.onnx'), /no such file/],
    ['a directory', () => dir, /is a directory/],
    [
      'an empty file',
      () => {
        const p = join(dir, 'empty.onnx');
        writeFileSync(p, '');
        return p;
      },
      /empty file/,
    ],
    [
      'random bytes',
      () => {
        const p = join(dir, 'random.onnx');
        writeFileSync(p, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)));
        return p;
      },
      /not (a valid|an) ONNX model/,
    ],
    [
      'a truncated model',
      () => {
        const p = join(dir, 'truncated.onnx');
        writeFileSync(p, readFileSync(fixture('digits', 'model.onnx')).subarray(0, 5000));
        return p;
      },
      /not a valid ONNX model/,
    ],
    [
      'a text file',
      () => {
        const p = join(dir, 'text.onnx');
        writeFileSync(p, 'hello, this is not a model\n');
        return p;
      },
      /not (a valid|an) ONNX model/,
    ],
  ];
  it.each(bad)('refuses %s with an error naming the file', (_what, make, message) => {
    const path = make();
    expect(() => readModel(path)).toThrow(InputError);
    expect(() => readModel(path)).toThrow(message);
    try {
      readModel(path);
    } catch (e) {
      expect((e as Error).message.startsWith(path)).toBe(true);
    }
  });

  it('checks external data when reading, without loading it', () => {
    const model = readModel(join(EXTERNAL, 'model.onnx'));
    const ranges = externalRanges(model);
    expect(ranges.length).toBe(3);
    for (const range of ranges) expect(statSync(range.file).size).toBeGreaterThanOrEqual(range.offset + range.length);
  });

  it('refuses an external location that climbs out of the model folder', () => {
    const path = externalCopy('escape', () => '../../etc/passwd');
    expect(() => readModel(path)).toThrow(/leaves the model's folder/);
  });

  it('refuses an absolute external location', () => {
    const path = externalCopy('absolute', () => '/etc/passwd');
    expect(() => readModel(path)).toThrow(/absolute path/);
  });

  it('refuses an external location that is a link to a file outside the folder', () => {
    const path = externalCopy('link', (l) => (l === 'weights_a.bin' ? 'sneaky.bin' : l));
    symlinkSync('/etc/hostname', join(dir, 'link', 'sneaky.bin'));
    expect(() => readModel(path)).toThrow(/through a link to outside/);
  });

  it('refuses a missing external data file', () => {
    const path = externalCopy('missing', (l) => (l === 'weights_b.bin' ? 'gone.bin' : l));
    expect(() => readModel(path)).toThrow(/'gone.bin' not found/);
  });

  it('refuses external data shorter than the tensor claims', () => {
    const path = externalCopy('short', (l) => l);
    writeFileSync(join(dir, 'short', 'weights_b.bin'), Buffer.alloc(100));
    expect(() => readModel(path)).toThrow(/needs bytes .* which has 100/);
  });
});

describe('writeModel', () => {
  it('writes an onnx-library file back byte for byte', () => {
    const out = join(dir, 'digits-copy.onnx');
    writeModel(readModel(fixture('digits', 'model.onnx')), out);
    expect(Buffer.compare(readFileSync(out), readFileSync(fixture('digits', 'model.onnx')))).toBe(0);
  });

  it('inlines external data on request, and the result runs with the same outputs', async () => {
    const out = join(dir, 'inlined.onnx');
    const result = writeModel(readModel(join(EXTERNAL, 'model.onnx')), out, { externalData: false });
    expect(result.externalData).toBeUndefined();
    const again = readModel(out);
    expect(externalRanges(again).length).toBe(0);
    const set = join(EXTERNAL, 'test_data_set_0');
    expect(await outputsOf(out, set)).toEqual(await outputsOf(join(EXTERNAL, 'model.onnx'), set));
  });

  it('moves tensors to one external file above the threshold, and the result runs with the same outputs', async () => {
    const sub = join(dir, 'ext-out');
    mkdirSync(sub);
    const out = join(sub, 'digits.onnx');
    const result = writeModel(readModel(fixture('digits', 'model.onnx')), out, { externalData: true, sizeThreshold: 1024 });
    expect(result.externalData!.path).toBe(join(sub, 'digits.onnx.data'));
    expect(statSync(result.externalData!.path).size).toBe(result.externalData!.bytes);
    expect(result.model.bytes).toBeLessThan(10_000);
    const back = readModel(out);
    expect(externalRanges(back).length).toBeGreaterThan(0);
    for (const range of externalRanges(back)) expect(range.length).toBeGreaterThanOrEqual(1024);
    const set = fixture('digits', 'test_data_set_0');
    const expected = readTestDataSet(set).outputs[0]!;
    const [actual] = await outputsOf(out, set);
    expect(actual!.data).toEqual(expected.data);
    // and back to one file: byte-identical to the original
    const single = join(dir, 'digits-single.onnx');
    writeModel(back, single, { externalData: false });
    expect(Buffer.compare(readFileSync(single), readFileSync(fixture('digits', 'model.onnx')))).toBe(0);
  });

  it('keeps external data external by default, copying it to a new file', async () => {
    const out = join(dir, 'ext-default.onnx');
    const result = writeModel(readModel(join(EXTERNAL, 'model.onnx')), out);
    expect(result.externalData).toBeDefined();
    const set = join(EXTERNAL, 'test_data_set_0');
    expect(await outputsOf(out, set)).toEqual(await outputsOf(join(EXTERNAL, 'model.onnx'), set));
  });

  it('never overwrites the input, and leaves no temporary file behind on failure', () => {
    const copy = join(dir, 'input-copy.onnx');
    copyFileSync(fixture('digits', 'model.onnx'), copy);
    const before = readFileSync(copy);
    expect(() => writeModel(readModel(copy), copy)).toThrow(UsageError);
    expect(readFileSync(copy)).toEqual(before);
    expect(() => writeModel(readModel(copy), join(dir, 'no-such-dir', 'out.onnx'))).toThrow(/cannot create/);
    expect(leftoverTemps(dir)).toEqual([]);
    expect(existsSync(join(dir, 'no-such-dir'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('tmp'))).toEqual([]);
  });
});
