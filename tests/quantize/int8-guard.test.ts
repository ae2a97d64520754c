// The fidelity guard of int8's default form (issue 16 item 4): a MatMul is computed in integers only
// where quantizing its activations, as DynamicQuantizeLinear does, is measured not to move the
// model's outputs. The case it exists for: a spectrogram front end (a DFT written as MatMuls, power,
// a mel filter bank, a log) on tonal input, whose power spectrum spans orders of magnitude that a
// per-tensor uint8 scale flattens to zero.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import { InputError, ResourceError } from '../../src/errors.js';
import { activationError } from '../../src/quantize/int8-guard.js';
import { checkAdvice, uncheckable } from '../../src/quantize/probe.js';
import { crashFailure } from '../../src/runtime/failure.js';
import { graph, model, node, save, tensor, vi } from '../convert/helpers.js';
import { cli, fixture, npy, scratch } from '../helpers.js';

const dir = scratch();
const N = 256,
  K = 129,
  M = 32,
  F = 8,
  CLASSES = 8;

/** x [1, F, N] frames → |DFT|² → mel filter bank → log(1 + ·) → a linear classifier. */
function spectrogramModel(): string {
  const cos = [],
    sin = [];
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      cos.push(Math.cos((2 * Math.PI * n * k) / N));
      sin.push(Math.sin((2 * Math.PI * n * k) / N));
    }
  const mel = new Array<number>(K * M).fill(0);
  for (let m = 0; m < M; m++) {
    const [l, c, r] = [m, m + 1, m + 2].map((i) => (i * (K - 1)) / (M + 1)) as [number, number, number];
    for (let k = 0; k < K; k++) mel[k * M + m] = k >= l && k <= c ? (k - l) / (c - l) : k > c && k <= r ? (r - k) / (r - c) : 0;
  }
  const classifier = Array.from({ length: M * CLASSES }, (_, i) => Math.sin(i * 12.9898) * 0.3);
  const g = graph(
    [
      node('MatMul', ['x', 'dft_cos'], ['re']),
      node('MatMul', ['x', 'dft_sin'], ['im']),
      node('Mul', ['re', 're'], ['re2']),
      node('Mul', ['im', 'im'], ['im2']),
      node('Add', ['re2', 'im2'], ['power']),
      node('MatMul', ['power', 'mel'], ['bands']),
      node('Add', ['bands', 'one'], ['bands1']),
      node('Log', ['bands1'], ['logmel']),
      node('MatMul', ['logmel', 'classifier'], ['logits']),
    ],
    [vi('x', [1, F, N])],
    [vi('logits', [1, F, CLASSES])],
    [
      tensor('dft_cos', [N, K], cos),
      tensor('dft_sin', [N, K], sin),
      tensor('mel', [K, M], mel),
      tensor('one', [], [1]),
      tensor('classifier', [M, CLASSES], classifier),
    ],
  );
  return save(join(dir, 'spectrogram.onnx'), model(g, 17));
}

/** A loud tone, a quiet one and a noise floor: a power spectrum from ~10⁴ down to ~1. */
function tonalFrames(): string {
  let seed = 7;
  const noise = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31 - 0.5;
  };
  const x = Float32Array.from(
    { length: F * N },
    (_, t) => Math.sin((2 * Math.PI * t * 17.3) / N) + 0.05 * Math.sin((2 * Math.PI * t * 61.7) / N) + 0.1 * noise(),
  );
  const path = join(dir, 'tone.npy');
  writeFileSync(path, npy(x, [1, F, N]));
  return path;
}

interface Report {
  passes: { notes: string[] }[];
  tensors: { name: string; note?: string }[];
  accuracy: { fidelity: { logits: { cosine: number } } };
}

let outputs = 0;
function int8(input: string, spec: string, data: string): Report & { path: string } {
  const path = join(dir, `out-${outputs++}.onnx`);
  const r = cli(['compress', input, '-o', path, '--force', '--quantize', spec, '--eval', '--data', data, '--runs', '0', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return { ...(JSON.parse(r.stdout) as Report), path };
}

describe('int8 mode=auto checks the integer form before choosing it', () => {
  const model = spectrogramModel();
  const data = tonalFrames();

  it('keeps the mel filter bank weight-only on tonal input: the output stays as close as weight-only, the unchecked integer form does not', () => {
    const guarded = int8(model, `int8:calibration=${data}`, data);
    const weightOnly = int8(model, `int8:mode=weight,calibration=${data}`, data);
    const unchecked = int8(model, `int8:check=none,calibration=${data}`, data);
    const cos = (r: Report) => r.accuracy.fidelity.logits.cosine;
    expect(cos(unchecked)).toBeLessThan(cos(weightOnly) - 0.05);
    expect(cos(guarded)).toBeGreaterThan(cos(weightOnly) - 0.005);
    // The report says which weight took which form, and why.
    const notes = guarded.passes[0]!.notes.join(' ');
    expect(notes).toMatch(/the integer form checked on .*tone\.npy: lowest output cosine 0\.99\d+ with it; 1 weight kept weight-only/);
    const mel = guarded.tensors.find((t) => t.name === 'mel')!;
    expect(mel.note).toMatch(/DequantizeLinear .*the integer form quantizes its input to a median error of \d+(\.\d)? %/);
    // The DFT and the classifier keep the integer form; the filter bank's MatMul stays a MatMul.
    const ops = readModel(guarded.path).graph.node.map((n) => n.op_type);
    expect(ops.filter((o) => o === 'MatMulInteger')).toHaveLength(3);
    expect(ops.filter((o) => o === 'MatMul')).toHaveLength(1);
  });

  it('on the fixtures it takes the integer form everywhere it did (outputs unchanged: tests/golden)', () => {
    const r = cli(['compress', fixture('charlm', 'model.onnx'), '-o', join(dir, 'charlm.onnx'), '--quantize', 'int8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const notes = (JSON.parse(r.stdout) as Report).passes[0]!.notes.join(' ');
    expect(notes).toMatch(/lowest output cosine 0\.999\d+ with it/);
    expect(notes).not.toMatch(/kept weight-only/);
    expect(notes).toMatch(/19 weights \(19 MatMul\) dynamic/);
  });
});

describe('activationError (the ranking of layers)', () => {
  it('is about half a step relative to the value for values spread over the range, and 100 % for values under one step', () => {
    const spread = Float32Array.from({ length: 1000 }, (_, i) => -1 + (2 * i) / 999);
    expect(activationError(spread)).toBeLessThan(0.01);
    // One huge value and many tiny ones: the tiny ones all quantize to 0.
    const peaky = Float32Array.from({ length: 1000 }, (_, i) => (i === 0 ? 10000 : 0.5 + i / 1000));
    expect(activationError(peaky)).toBe(1);
  });
});

describe('what the check runs on, and when it cannot run', () => {
  it('runs on --data when no calibration= is given (and so keeps the filter bank weight-only without one)', () => {
    const model = spectrogramModel();
    const data = tonalFrames();
    const r = cli(['compress', model, '-o', join(dir, 'with-data.onnx'), '--force', '--quantize', 'int8', '--data', data, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const notes = (JSON.parse(r.stdout) as Report).passes[0]!.notes.join(' ');
    expect(notes).toMatch(/the integer form checked on .*tone\.npy/);
    expect(notes).toMatch(/1 weight kept weight-only/);
  });

  it('a model that does not run on synthesized inputs: the integer form is not chosen unchecked (weight-only, said), and --data lets it be checked', () => {
    // x [N, 64] · W, then Reshape to [3, −1]: 64·N must divide by 3, which the synthesized N = 1 does not.
    const g = graph(
      [node('MatMul', ['x', 'W'], ['h']), node('Reshape', ['h', 'shape'], ['y'])],
      [vi('x', ['N', 64])],
      [vi('y', [3, 'M'])],
      [
        tensor(
          'W',
          [64, 64],
          Array.from({ length: 4096 }, (_, i) => Math.sin(i) * 0.1),
        ),
        tensor('shape', [2], [3, -1], 7),
      ],
    );
    const input = save(join(dir, 'needs-data.onnx'), model(g, 17));
    const r = cli(['compress', input, '-o', join(dir, 'needs-data-int8.onnx'), '--force', '--quantize', 'int8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const notes = (JSON.parse(r.stdout) as Report).passes[0]!.notes.join(' ');
    expect(notes).toMatch(
      /the integer form could not be checked, so 1 MatMul\/Gemm weight is weight-only \(give the check inputs with --data or calibration=DATA\)/,
    );
    expect(readModel(join(dir, 'needs-data-int8.onnx')).graph.node.some((n) => n.op_type === 'MatMulInteger')).toBe(false);
    const x = join(dir, 'x3.npy');
    writeFileSync(
      x,
      npy(
        Float32Array.from({ length: 3 * 64 }, (_, i) => Math.cos(i)),
        [3, 64],
      ),
    );
    const checked = cli(['compress', input, '-o', join(dir, 'needs-data-int8b.onnx'), '--force', '--quantize', 'int8', '--data', x]);
    expect(checked.code, checked.stderr).toBe(0);
    expect(readModel(join(dir, 'needs-data-int8b.onnx')).graph.node.some((n) => n.op_type === 'MatMulInteger')).toBe(true);
  });

  it('a large float tensor no op reads as a weight is named in the skips (never left float in silence), and --strict fails on it', () => {
    const g = graph(
      [node('Add', ['x', 'table'], ['y'])],
      [vi('x', [64, 64])],
      [vi('y', [64, 64])],
      [tensor('table', [64, 64], new Array(4096).fill(0.5))],
    );
    const input = save(join(dir, 'added.onnx'), model(g, 17));
    const r = cli(['compress', input, '-o', join(dir, 'added-int8.onnx'), '--force', '--quantize', 'int8']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/read by Add, not as the weight of an op this pass takes: left as it is \(table\)/);
    expect(cli(['compress', input, '-o', join(dir, 'added-int8.onnx'), '--force', '--quantize', 'int8', '--strict']).code).toBe(3);
  });
});

describe('a check that could not run', () => {
  it('is a note suggesting other inputs, or saying that memory stood in the way; a bug is thrown on', () => {
    expect(checkAdvice(new InputError('m.onnx: ONNX Runtime failed running it'))).toMatch(/--data or calibration=DATA/);
    const memory = new ResourceError("the model's tensors (2.46 GiB) exceed the 2.00 GiB this process may use (a cgroup)");
    expect(uncheckable(memory)).toBe(memory.message);
    expect(checkAdvice(memory)).toMatch(/in memory/);
    expect(checkAdvice(crashFailure('m.onnx', 'loading', 'SIGKILL', ''))).toMatch(/in memory/);
    expect(checkAdvice(crashFailure('m.onnx', 'loading', 'SIGSEGV', ''))).toMatch(/--data or calibration=DATA/);
    expect(() => uncheckable(new Error('a bug'))).toThrow('a bug');
  });
});
