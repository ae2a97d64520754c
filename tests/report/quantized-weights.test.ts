// Models that are already quantized: inspect lists their quantized weights (JSON counts by form, a
// line of text), and a quantize pass says why it left them alone ("already int8 (DequantizeLinear
// per-axis)", "already 4-bit (MatMulNBits)"): a skip of the pass's own, so --strict fails.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { cli, scratch } from '../helpers.js';
import { values } from '../convert/helpers.js';

const dir = scratch();
const FLOAT = 1,
  UINT8 = 2,
  INT8 = 3;

const value = (name: string, dims: number[], elem = FLOAT) => ({
  name,
  type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
});
const tensor = (name: string, dims: number[], dataType: number, raw: Uint8Array) => ({ name, dims, data_type: dataType, raw_data: raw });
const floats = (name: string, dims: number[], v: Float32Array) => tensor(name, dims, FLOAT, new Uint8Array(v.buffer));
const codes = (n: number, seed: number) => Uint8Array.from(values(n, seed), (x) => Math.round(x * 60) & 0xff);

function save(name: string, graph: object, opsets: { domain: string; version: number }[]): string {
  const path = join(dir, name);
  writeFileSync(path, encode('onnx.ModelProto', { ir_version: 8, opset_import: opsets, graph: { name: 'g', ...graph } }));
  return path;
}

/** int8 codes [32, 16] → DequantizeLinear (per-axis scales, axis 1) → MatMul; `withFloat` adds a float32 MatMul after it. */
function qdqModel(name: string, withFloat: boolean): string {
  const node = [
    {
      op_type: 'DequantizeLinear',
      input: ['w_q', 'w_scale', 'w_zp'],
      output: ['w'],
      name: 'dq',
      attribute: [{ name: 'axis', type: 2, i: 1 }],
    },
    { op_type: 'MatMul', input: ['x', 'w'], output: [withFloat ? 'h' : 'y'], name: 'mm' },
    ...(withFloat ? [{ op_type: 'MatMul', input: ['h', 'w2'], output: ['y'], name: 'mm2' }] : []),
  ];
  return save(
    name,
    {
      node,
      input: [value('x', [2, 32])],
      output: [value('y', [2, 16])],
      initializer: [
        tensor('w_q', [32, 16], INT8, codes(512, 3)),
        floats(
          'w_scale',
          [16],
          Float32Array.from({ length: 16 }, (_, i) => 0.01 + i / 1000),
        ),
        tensor('w_zp', [16], INT8, new Uint8Array(16)),
        ...(withFloat ? [floats('w2', [16, 16], values(256, 5))] : []),
      ],
    },
    [{ domain: '', version: 13 }],
  );
}

/** A dynamically quantized Conv: DynamicQuantizeLinear on the input, uint8 weight [16, 2, 3, 3] in ConvInteger, rescaled to float. */
function convIntegerModel(): string {
  return save(
    'convinteger.onnx',
    {
      node: [
        { op_type: 'DynamicQuantizeLinear', input: ['x'], output: ['x_q', 'x_scale', 'x_zp'], name: 'dql' },
        { op_type: 'ConvInteger', input: ['x_q', 'w_q', 'x_zp', 'w_zp'], output: ['acc'], name: 'conv' },
        { op_type: 'Cast', input: ['acc'], output: ['acc_f'], name: 'cast', attribute: [{ name: 'to', type: 2, i: FLOAT }] },
        { op_type: 'Mul', input: ['x_scale', 'w_scale'], output: ['scale'], name: 'scales' },
        { op_type: 'Mul', input: ['acc_f', 'scale'], output: ['y'], name: 'rescale' },
      ],
      input: [value('x', [1, 2, 8, 8])],
      output: [value('y', [1, 16, 6, 6])],
      initializer: [
        tensor('w_q', [16, 2, 3, 3], UINT8, codes(288, 7)),
        tensor('w_zp', [], UINT8, Uint8Array.of(128)),
        floats('w_scale', [], Float32Array.of(0.02)),
      ],
    },
    [{ domain: '', version: 11 }],
  );
}

/** A float32 MatMul [64, 32], which `--quantize int4` turns into com.microsoft.MatMulNBits. */
function matMulModel(): string {
  return save(
    'matmul.onnx',
    {
      node: [{ op_type: 'MatMul', input: ['x', 'w'], output: ['y'], name: 'mm' }],
      input: [value('x', [1, 64])],
      output: [value('y', [1, 32])],
      initializer: [floats('w', [64, 32], values(64 * 32, 9))],
    },
    [{ domain: '', version: 13 }],
  );
}

interface Inspected {
  quantized: { tensors: number; bytes: number; byForm: Record<string, number> };
}
const inspectJson = (path: string) => {
  const r = cli(['inspect', path, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Inspected).quantized;
};

interface Compressed {
  passes: { method: string; tensorsChanged: number; skipped: { name: string; reason: string; chosen?: boolean }[] }[];
}

/** compress with `spec`: the terminal report, the JSON report, and --strict's exit code and message. */
function compress(path: string, spec: string, label: string) {
  const text = cli(['compress', path, '-o', join(dir, `${label}.txt.onnx`), '--quantize', spec]);
  const json = cli(['compress', path, '-o', join(dir, `${label}.json.onnx`), '--quantize', spec, '--json']);
  const strict = cli(['compress', path, '-o', join(dir, `${label}.strict.onnx`), '--quantize', spec, '--strict']);
  expect(text.code, text.stderr).toBe(0);
  expect(json.code, json.stderr).toBe(0);
  return { text: text.stdout, report: JSON.parse(json.stdout) as Compressed, strict };
}

describe('already-quantized weights', () => {
  const qdq = qdqModel('qdq.onnx', false);
  const conv = convIntegerModel();

  it('the hand-built models run in ONNX Runtime', async () => {
    const [y] = await run(await createSession(qdq), [{ name: 'x', dtype: FLOAT, dims: [2, 32], data: values(64, 2) }]);
    expect(y!.dims).toEqual([2, 16]);
    const [z] = await run(await createSession(conv), [{ name: 'x', dtype: FLOAT, dims: [1, 2, 8, 8], data: values(128, 2) }]);
    expect(z!.dims).toEqual([1, 16, 6, 6]);
  });

  it('QDQ (int8 → DequantizeLinear per-axis → MatMul): inspect counts it; int8 and int4 say "already int8"', () => {
    expect(inspectJson(qdq)).toEqual({ tensors: 1, bytes: 512, byForm: { 'DequantizeLinear int8 per-axis': 1 } });
    expect(cli(['inspect', qdq]).stdout).toContain('quantized weights: 1 tensor, 512 B: 1 DequantizeLinear int8\n');
    for (const method of ['int8', 'int4']) {
      const { text, report, strict } = compress(qdq, method, `qdq-${method}`);
      expect(text).toContain(`quantize ${method}: 1 tensor skipped: already int8 (DequantizeLinear per-axis) (w_q)`);
      expect(report.passes[0]!.skipped).toEqual([{ name: 'w_q', reason: 'already int8 (DequantizeLinear per-axis)' }]);
      expect(strict.code).toBe(3);
    }
  });

  it('a float weight beside a QDQ one: int8 quantizes the float one, and --strict fails for the one already int8', () => {
    const mixed = qdqModel('qdq-mixed.onnx', true);
    const { text, report, strict } = compress(mixed, 'int8', 'qdq-mixed');
    expect(report.passes[0]!.tensorsChanged).toBe(1);
    expect(report.passes[0]!.skipped).toEqual([{ name: 'w_q', reason: 'already int8 (DequantizeLinear per-axis)' }]);
    expect(text).toContain('quantize int8: 1 tensor skipped: already int8 (DequantizeLinear per-axis) (w_q)');
    expect(strict.code).toBe(3);
    expect(strict.stderr.trim()).toBe('onnxpress: gate strict failed: quantize int8 left 1 tensor alone (see skipped)');
    // Left out by the selection options, it is the user's choice (chosen), and --strict passes.
    const excluded = cli(['compress', mixed, '-o', join(dir, 'qdq-excluded.onnx'), '--quantize', 'int8:exclude=w_q', '--strict', '--json']);
    expect(excluded.code, excluded.stderr).toBe(0);
    expect((JSON.parse(excluded.stdout) as Compressed).passes[0]!.skipped).toEqual([
      { name: 'w_q', reason: 'matches exclude pattern', chosen: true },
    ]);
  });

  it('ConvInteger (uint8 weight, DynamicQuantizeLinear on the input): inspect counts it; int8 and int4 say "already uint8"', () => {
    expect(inspectJson(conv)).toEqual({ tensors: 1, bytes: 288, byForm: { 'ConvInteger uint8': 1 } });
    expect(cli(['inspect', conv]).stdout).toContain('quantized weights: 1 tensor, 288 B: 1 ConvInteger uint8\n');
    for (const method of ['int8', 'int4']) {
      const { text, report, strict } = compress(conv, method, `conv-${method}`);
      expect(text).toContain(`quantize ${method}: 1 tensor skipped: already uint8 (ConvInteger) (w_q)`);
      expect(report.passes[0]!.skipped).toEqual([{ name: 'w_q', reason: 'already uint8 (ConvInteger)' }]);
      expect(strict.code).toBe(3);
    }
  });

  it('MatMulNBits (made by --quantize int4): inspect counts it; int8 and int4 say "already 4-bit"', () => {
    const nbits = join(dir, 'nbits.onnx');
    const made = cli(['compress', matMulModel(), '-o', nbits, '--quantize', 'int4']);
    expect(made.code, made.stderr).toBe(0);
    const q = inspectJson(nbits);
    expect(q).toEqual({ tensors: 1, bytes: 1024, byForm: { 'MatMulNBits 4-bit': 1 } });
    expect(cli(['inspect', nbits]).stdout).toContain('quantized weights: 1 tensor, 1.02 kB: 1 MatMulNBits 4-bit\n');
    for (const method of ['int8', 'int4']) {
      const { text, report, strict } = compress(nbits, method, `nbits-${method}`);
      const [skip] = report.passes[0]!.skipped;
      expect(report.passes[0]!.skipped).toEqual([{ name: skip!.name, reason: 'already 4-bit (MatMulNBits)' }]);
      expect(text).toContain(`quantize ${method}: 1 tensor skipped: already 4-bit (MatMulNBits) (${skip!.name})`);
      expect(strict.code).toBe(3);
    }
  });
});
