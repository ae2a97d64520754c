// Every kernel pass writes the same bytes whatever the thread count, and the same tensors whether the
// output is one file or written as it goes to an external data file (issue 24: the speed work must
// never change an output). The checks of int8's and fp16's defaults run ONNX Runtime on --threads
// too: their choices must not move with it either.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { tensorBytes } from '../../src/ir/tensor.js';
import { compress } from '../../src/pipeline/compress.js';
import { parseStep } from '../../src/pipeline/registry.js';
import { fixture, scratch } from '../helpers.js';

const dir = scratch();
const CHARLM = fixture('charlm', 'model.onnx');
const SPECS: [string, string][] = [
  ['quantize', 'int8:check=none'],
  ['quantize', 'int8'],
  ['quantize', 'fp16'],
  ['quantize', 'int4'],
  ['quantize', 'fp16:check=none'],
  ['prune', 'magnitude:sparsity=0.5'],
  ['prune', 'nm:n=2,m=4'],
  ['share', 'cluster:k=16'],
];

const tensorsOf = (path: string) =>
  new Map(readModel(path).graph.initializer.map((t) => [t.name!, Buffer.from(tensorBytes(t)).toString('base64')]));

describe.each(SPECS)('--%s %s', (family, spec) => {
  const name = `${family}-${spec.replace(/[:=,.]/g, '-')}`;
  it('is byte-identical on 1 and 2 threads, and its tensors the same when streamed to external data', async () => {
    const steps = [parseStep(family, spec)];
    const [one, two, streamed] = ['1', '2', 'ext'].map((t) => join(dir, `${name}-${t}.onnx`));
    await compress(CHARLM, one!, { steps, threads: 1 });
    await compress(CHARLM, two!, { steps, threads: 2 });
    await compress(CHARLM, streamed!, { steps, threads: 2, write: { externalData: true } });
    expect(readFileSync(two!).equals(readFileSync(one!))).toBe(true);
    expect(tensorsOf(streamed!)).toEqual(tensorsOf(one!));
  });
});
