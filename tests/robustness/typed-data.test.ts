// Tensors whose stored data disagrees with their shape and type (src/ir/validate.ts,
// tensorSizeProblem): refused when the model is read, by every command, with the same one line.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { readModel } from '../../src/io/read.js';
import type { TensorProto } from '../../src/ir/onnx.js';
import { DataType } from '../../src/ir/onnx.js';
import { tensorSizeProblem } from '../../src/ir/validate.js';
import { emptyTensor } from '../../src/ir/tensor.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();

/** The digits model with fc1.weight (a [64, 512] float32 initializer) changed by `change`. */
function digitsWith(name: string, change: (t: TensorProto) => void): string {
  const model = readModel(fixture('digits', 'model.onnx'));
  const t = model.graph.initializer.find((i) => i.name === 'fc1.weight')!;
  t.raw_data = undefined;
  t.dims = [64, 64];
  change(t);
  const path = join(dir, `${name}.onnx`);
  writeFileSync(path, encode('onnx.ModelProto', model.proto));
  return path;
}

const floats = (n: number) => Float32Array.from({ length: n }, (_, i) => i / n);

const cases: [string, (t: TensorProto) => void, RegExp][] = [
  [
    'dims [0, 64] with 16 kB of raw data',
    (t) => {
      t.dims = [0, 64];
      t.raw_data = new Uint8Array(16384);
    },
    /tensor 'fc1\.weight' of shape \[0, 64\] has no elements but holds 16384 bytes of raw_data/,
  ],
  [
    'float_data with 10 values for [64, 64]',
    (t) => {
      t.float_data = floats(10);
    },
    /tensor 'fc1\.weight' has 10 values in float_data for shape \[64, 64\] of float32, which needs 4096/,
  ],
  [
    'float_data with 5000 values for [64, 64]',
    (t) => {
      t.float_data = floats(5000);
    },
    /tensor 'fc1\.weight' has 5000 values in float_data for shape \[64, 64\] of float32, which needs 4096/,
  ],
  [
    'both raw_data and float_data',
    (t) => {
      t.raw_data = new Uint8Array(16384);
      t.float_data = floats(4096);
    },
    /tensor 'fc1\.weight' of shape \[64, 64\] holds values in both float_data and raw_data; ONNX allows one/,
  ],
  [
    'float32 values in int32_data',
    (t) => {
      t.int32_data = Int32Array.from({ length: 4096 });
    },
    /tensor 'fc1\.weight' is float32, whose values ONNX keeps in float_data, but holds int32_data/,
  ],
  [
    'float32 values in int64_data, for a zero-element shape',
    (t) => {
      t.dims = [64, 0];
      t.int64_data = [1n];
    },
    /tensor 'fc1\.weight' of shape \[64, 0\] has no elements but holds 1 values in int64_data/,
  ],
];

describe('typed data is checked against the shape like raw data', () => {
  it.each(cases)('%s: inspect, copy, int4 and int8 all refuse it with one line', (name, change, message) => {
    const path = digitsWith(name.replace(/\W+/g, '-'), change);
    const lines = new Set<string>();
    for (const args of [
      ['inspect', path],
      ['compress', path, '-o', join(dir, 'out.onnx'), '--force'],
      ['compress', path, '-o', join(dir, 'out.onnx'), '--force', '--quantize', 'int4'],
      ['compress', path, '-o', join(dir, 'out.onnx'), '--force', '--quantize', 'int8'],
    ]) {
      const r = cli(args);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/internal error|a bug in onnxpress/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.code, args.join(' ')).toBe(1);
      lines.add(r.stderr);
    }
    expect(lines.size).toBe(1);
  });

  const tensor = (dataType: number, dims: number[], fill: Partial<TensorProto>): TensorProto => ({
    ...emptyTensor(),
    name: 't',
    data_type: dataType,
    dims,
    ...fill,
  });

  it('follows onnx.proto for each typed field', () => {
    // Accepted: exact counts in the field the type uses.
    expect(tensorSizeProblem(tensor(DataType.INT64, [3], { int64_data: [1n, 2n, 3n] }))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.DOUBLE, [2], { double_data: [1, 2] }))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.UINT32, [2], { uint64_data: [1n, 2n] }))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.FLOAT16, [2, 2], { int32_data: [1, 2, 3, 4] }))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.STRING, [2], { string_data: [new Uint8Array(1), new Uint8Array(0)] }))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.COMPLEX64, [2], { float_data: [1, 2, 3, 4] }))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.INT4, [3], { int32_data: [0x21, 0x03] }))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.UINT2, [5], { int32_data: [0, 0] }))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.FLOAT, [0, 4], {}))).toBeUndefined();
    expect(tensorSizeProblem(tensor(DataType.FLOAT, [0], { raw_data: new Uint8Array(0) }))).toBeUndefined();
    // Refused: counts off by one, two per complex element, packed 4-bit entries, strings.
    expect(tensorSizeProblem(tensor(DataType.INT64, [3], { int64_data: [1n, 2n] }))).toMatch(
      /has 2 values in int64_data for shape \[3\] of int64, which needs 3/,
    );
    expect(tensorSizeProblem(tensor(DataType.COMPLEX64, [2], { float_data: [1, 2] }))).toMatch(
      /has 2 values in float_data for shape \[2\] of complex64, which needs 4/,
    );
    expect(tensorSizeProblem(tensor(DataType.INT4, [3], { int32_data: [1, 2, 3] }))).toMatch(
      /has 3 values in int32_data for shape \[3\] of int4, which needs 2/,
    );
    expect(tensorSizeProblem(tensor(DataType.STRING, [2], { string_data: [new Uint8Array(1)] }))).toMatch(
      /has 1 values in string_data for shape \[2\] of string, which needs 2/,
    );
    expect(tensorSizeProblem(tensor(DataType.STRING, [1], { raw_data: new Uint8Array(1) }))).toMatch(
      /string tensor, whose values ONNX keeps in string_data only/,
    );
    expect(tensorSizeProblem(tensor(DataType.UINT32, [1], { int32_data: [1] }))).toMatch(
      /is uint32, whose values ONNX keeps in uint64_data, but holds int32_data/,
    );
    expect(tensorSizeProblem(tensor(DataType.FLOAT, [2, -2], { float_data: [1, 2, 3, 4] }))).toMatch(
      /negative dimension in shape \[2, -2\]/,
    );
    expect(tensorSizeProblem(tensor(DataType.FLOAT, [2], { raw_data: new Uint8Array(8) }), 8)).toMatch(
      /holds values in both raw_data and external data/,
    );
  });

  it('a TensorProto evaluation file is held to the same rules, and the message names the file', () => {
    const input = tensor(DataType.FLOAT, [1, 1, 8, 8], { float_data: floats(10) });
    const path = join(dir, 'short-input.pb');
    writeFileSync(path, encode('onnx.TensorProto', input));
    const r = cli(['eval', fixture('digits', 'model.onnx'), '--reference', fixture('digits', 'model.onnx'), '--data', path, '--runs', '0']);
    expect(r.stderr.trim()).toMatch(
      /^onnxpress: \S*short-input\.pb: tensor 't' has 10 values in float_data for shape \[1, 1, 8, 8\] of float32, which needs 64$/,
    );
    expect(r.code).toBe(1);
  });
});
