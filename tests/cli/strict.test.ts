// --strict: a pass that did less than asked fails the run (exit 3) after writing, as a CI gate does.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { cli, fixture, scratch } from '../helpers.js';

const dir = scratch();
const DIGITS = fixture('digits', 'model.onnx');

/** Two MatMuls: one float32 weight (int8 quantizes it) and one float64 weight (int8 leaves it alone). */
function mixedModel(): string {
  const value = (name: string, elem: number) => ({
    name,
    type: { tensor_type: { elem_type: elem, shape: { dim: [{ dim_value: 1 }, { dim_value: 64 }] } } },
  });
  const weight = (name: string, dtype: number, bytes: number) => ({
    name,
    dims: [64, 64],
    data_type: dtype,
    raw_data: new Uint8Array(64 * 64 * bytes).fill(60),
  });
  const path = join(dir, 'mixed.onnx');
  writeFileSync(
    path,
    encode('onnx.ModelProto', {
      ir_version: 8,
      opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'g',
        node: [
          { op_type: 'MatMul', input: ['x', 'w32'], output: ['y'] },
          { op_type: 'MatMul', input: ['h', 'w64'], output: ['z'] },
        ],
        input: [value('x', 1), value('h', 11)],
        output: [value('y', 1), value('z', 11)],
        initializer: [weight('w32', 1, 4), weight('w64', 11, 8)],
      },
    }),
  );
  return path;
}

describe('compress --strict', () => {
  it('passes when every pass did all it was asked (tensors left out by min-size are the user’s choice)', () => {
    const r = cli(['compress', DIGITS, '-o', join(dir, 'ok.onnx'), '--quantize', 'int8', '--strict', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).gates).toEqual([expect.objectContaining({ gate: 'strict', passed: true })]);
  });

  it('exits 3 when a pass changed nothing, after writing the output and naming the reason', () => {
    const out = join(dir, 'nothing.onnx');
    const r = cli(['compress', DIGITS, '-o', out, '--quantize', 'int8:ops=MatMul', '--strict']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/quantize int8: 2 tensors skipped: its ops \(Gemm\) are not selected/);
    expect(r.stderr.trim()).toBe('onnxpress: gate strict failed: quantize int8 changed nothing');
    expect(existsSync(out)).toBe(true);
    expect(cli(['compress', DIGITS, '-o', join(dir, 'lenient.onnx'), '--quantize', 'int8:ops=MatMul']).code).toBe(0);
  });

  it('exits 3 when a pass left a tensor alone for its own reason (a float64 weight)', () => {
    const r = cli(['compress', mixedModel(), '-o', join(dir, 'mixed-out.onnx'), '--quantize', 'int8', '--strict']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/float64 weights are left as they are \(float32, float16 and bfloat16 only\)/);
    expect(r.stderr.trim()).toBe('onnxpress: gate strict failed: quantize int8 left 1 tensor alone (see skipped)');
  });
});
