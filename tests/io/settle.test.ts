// Outputs with external data are written as the last pass goes: each new tensor is written as soon
// as it is final and dropped from memory (OutputData.settle), and the rest is added at the end.
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileRange } from '../../src/ir/file-range.js';
import { readModel } from '../../src/io/read.js';
import { readTestDataSet } from '../../src/io/testdata.js';
import { DataType, type TensorProto } from '../../src/ir/onnx.js';
import { writeModel } from '../../src/io/write.js';
import { makeTensor, tensorBytes } from '../../src/ir/tensor.js';
import { compress } from '../../src/pipeline/compress.js';
import type { Pass } from '../../src/pass/pass.js';
import { parseStep, type PipelineStep } from '../../src/pipeline/registry.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { fixture, leftoverTemps, scratch } from '../helpers.js';

const dir = scratch();
const CHARLM = fixture('charlm', 'model.onnx');

/** The char LM with its weights in an external data file. */
function externalCharLm(): string {
  const path = join(dir, 'charlm-external', 'model.onnx');
  mkdirSync(join(dir, 'charlm-external'));
  writeModel(readModel(CHARLM), path, { externalData: true });
  return path;
}

async function outputsOf(path: string) {
  const session = await createSession(path);
  const set = readTestDataSet(fixture('charlm', 'test_data_set_0'));
  return run(
    session,
    set.inputs.map((a, i) => ({ ...a, name: session.inputNames[i]! })),
  );
}

function bytesByName(path: string): Map<string, Buffer> {
  const model = readModel(path);
  return new Map(model.graph.initializer.map((t) => [t.name!, Buffer.from(tensorBytes(t))]));
}

describe('writing an external data output as the last pass goes', () => {
  const source = externalCharLm();

  it.each(['int8', 'int4', 'int8:mode=dynamic'])(
    'gives the same tensors and outputs as a single-file output (--quantize %s)',
    async (spec) => {
      const name = spec.replace(/[:=]/g, '-');
      const streamed = join(dir, `${name}-streamed`, 'model.onnx');
      const single = join(dir, `${name}-single.onnx`);
      const r = await compress(source, streamed, { steps: [parseStep('quantize', spec)], createOutputFolder: true });
      await compress(CHARLM, single, { steps: [parseStep('quantize', spec)] });
      expect(r.output.files.map((f) => f.path.split('/').pop())).toEqual(['model.onnx', 'model.onnx.data']);
      expect(bytesByName(streamed)).toEqual(bytesByName(single));
      const [a, b] = [await outputsOf(streamed), await outputsOf(single)];
      expect(a.map((t) => Array.from(t.data as Float32Array))).toEqual(b.map((t) => Array.from(t.data as Float32Array)));
      // The quantized tensors were let go as written: the model in hand reads them from the output's data file.
      const inFile = r.model.graph.initializer.filter(
        (t) => t.raw_data instanceof FileRange && t.raw_data.file.endsWith('model.onnx.data'),
      );
      expect(inFile.length).toBeGreaterThan(5);
      expect(leftoverTemps(join(dir, `${name}-streamed`))).toEqual([]);
    },
  );

  it('leaves no data file behind when the pass fails after writing tensors', async () => {
    const failing: Pass = {
      family: 'quantize',
      method: 'failing',
      description: 'settles a tensor, then fails',
      options: {},
      run(model) {
        const t: TensorProto = makeTensor('extra', DataType.UINT8, [4096], new Uint8Array(4096).fill(7));
        model.graph.initializer.push(t);
        model.settle([t]);
        expect(t.raw_data instanceof FileRange).toBe(true);
        throw new Error('deliberate failure');
      },
    };
    const step: PipelineStep = { pass: failing, options: {}, spec: 'failing' };
    const out = join(dir, 'failed', 'model.onnx');
    await expect(compress(source, out, { steps: [step], createOutputFolder: true })).rejects.toThrow(/deliberate failure/);
    expect(readdirSync(join(dir, 'failed'))).toEqual([]);
  });

  it("settles only in the last step (an earlier step's tensors may still change)", async () => {
    // Each step settles a new tensor of its own: only the last step's is written at once (a FileRange).
    const seen: boolean[] = [];
    const probe = (method: string): PipelineStep => ({
      pass: {
        family: 'share',
        method,
        description: '',
        options: {},
        run(model) {
          const t = makeTensor(`settled_${method}`, DataType.UINT8, [4096], new Uint8Array(4096).fill(3));
          model.graph.initializer.push(t);
          model.settle([t]);
          seen.push(t.raw_data instanceof FileRange);
          return { pass: 'share', method, options: {}, tensors: [], skipped: [], bytesBefore: 0, bytesAfter: 0, notes: [] };
        },
      },
      options: {},
      spec: method,
    });
    await compress(source, join(dir, 'probe', 'model.onnx'), { steps: [probe('a'), probe('b'), probe('c')], createOutputFolder: true });
    expect(seen).toEqual([false, false, true]);
    await compress(CHARLM, join(dir, 'probe-single.onnx'), { steps: [probe('d')] });
    expect(seen).toEqual([false, false, true, false]);
  });
});
