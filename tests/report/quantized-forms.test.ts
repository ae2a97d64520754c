// findQuantizedWeights on every form it knows, in one graph that is only read, never run: QDQ
// per-tensor, per-axis and blocked (int4), QLinearConv, QLinearMatMul, com.microsoft QGemm,
// MatMulInteger, MatMulNBits, GatherBlockQuantized, one inside an If branch; and what it leaves out
// (int32 biases, float initializers, activations, a weight read twice counted once).
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../src/io/codec.js';
import type { ModelProto } from '../../src/ir/onnx.js';
import { Model } from '../../src/ir/model.js';
import { findQuantizedWeights } from '../../src/ir/quantized.js';
import { inspectModel, renderInspect } from '../../src/report/inspect.js';

const FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  INT32 = 6,
  UINT4 = 21,
  INT4 = 22;
const t = (name: string, dims: number[], dataType: number, bytes: number) => ({
  name,
  dims,
  data_type: dataType,
  raw_data: new Uint8Array(bytes),
});
const n = (op: string, input: string[], output: string[], extra: object = {}) => ({
  op_type: op,
  input,
  output,
  name: `${op}_${output[0]}`,
  ...extra,
});
const i = (name: string, v: number) => ({ name, type: 2, i: v });

function model(): Model {
  const branch = {
    name: 'then',
    node: [n('DequantizeLinear', ['sub_q', 's1'], ['sub'])],
    output: [{ name: 'sub' }],
    initializer: [t('sub_q', [8], UINT8, 8)],
  };
  const proto = {
    ir_version: 10,
    opset_import: [
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: {
      name: 'g',
      node: [
        n('DequantizeLinear', ['t_q', 's1'], ['t_w']),
        n('DequantizeLinear', ['a_q', 's16', 'z16'], ['a_w'], { attribute: [i('axis', 0)] }),
        n('DequantizeLinear', ['b_q', 'sb'], ['b_w'], { attribute: [i('axis', 1), i('block_size', 32)] }),
        n('DequantizeLinear', ['bias_q', 's1'], ['bias']),
        n('DequantizeLinear', ['x', 's1'], ['xd']),
        n('QLinearConv', ['x', 's1', 'z1', 'c_q', 's16', 'z16', 's1', 'z1'], ['c']),
        n('QLinearMatMul', ['x', 's1', 'z1', 'm_q', 's1', 'z1', 's1', 'z1'], ['m']),
        n('QGemm', ['x', 's1', 'z1', 'g_q', 's16', 'z16', '', 's1', 'z1'], ['gq'], { domain: 'com.microsoft' }),
        n('MatMulInteger', ['x', 'i_q'], ['mi']),
        n('MatMulInteger', ['x', 'i_q'], ['mi2']),
        n('MatMulNBits', ['xf', 'nb_q', 'nb_s'], ['nb'], {
          domain: 'com.microsoft',
          attribute: [i('K', 64), i('N', 16), i('bits', 4), i('block_size', 32)],
        }),
        n('GatherBlockQuantized', ['e_q', 'ids', 'e_s'], ['e'], { domain: 'com.microsoft', attribute: [i('block_size', 32)] }),
        n('If', ['cond'], ['sub'], {
          attribute: [
            { name: 'then_branch', type: 5, g: branch },
            { name: 'else_branch', type: 5, g: { name: 'else', node: [n('Identity', ['s1'], ['sub'])], output: [{ name: 'sub' }] } },
          ],
        }),
      ],
      input: [{ name: 'x' }, { name: 'xf' }, { name: 'ids' }, { name: 'cond' }],
      output: [{ name: 'sub' }],
      initializer: [
        t('t_q', [16, 16], INT8, 256),
        t('a_q', [16, 16], UINT8, 256),
        t('b_q', [8, 64], INT4, 256),
        t('bias_q', [16], INT32, 64),
        t('c_q', [16, 4, 3, 3], INT8, 576),
        t('m_q', [16, 8], UINT8, 128),
        t('g_q', [16, 8], INT8, 128),
        t('i_q', [16, 8], UINT8, 128),
        t('nb_q', [16, 2, 16], UINT8, 512),
        t('e_q', [100, 64], UINT4, 3200),
        t('s1', [], FLOAT, 4),
        t('z1', [], UINT8, 1),
        t('s16', [16], FLOAT, 64),
        t('z16', [16], UINT8, 16),
        t('sb', [8, 2], FLOAT, 64),
        t('nb_s', [32], FLOAT, 128),
        t('e_s', [100, 2], FLOAT, 800),
      ],
    },
  };
  return new Model(decode<ModelProto>('onnx.ModelProto', encode('onnx.ModelProto', proto)));
}

describe('findQuantizedWeights', () => {
  it('finds each form with its dtype, granularity, elements, bytes and skip reason', () => {
    const found = findQuantizedWeights(model()).map((q) => [q.name, q.label, q.elements, q.bytes, q.reason]);
    expect(found).toEqual([
      ['t_q', 'DequantizeLinear int8 per-tensor', 256, 256, 'already int8 (DequantizeLinear per-tensor)'],
      ['a_q', 'DequantizeLinear uint8 per-axis', 256, 256, 'already uint8 (DequantizeLinear per-axis)'],
      ['b_q', 'DequantizeLinear int4 blocked', 512, 256, 'already int4 (DequantizeLinear blocked)'],
      ['c_q', 'QLinearConv int8 per-axis', 576, 576, 'already int8 (QLinearConv per-axis)'],
      ['m_q', 'QLinearMatMul uint8 per-tensor', 128, 128, 'already uint8 (QLinearMatMul per-tensor)'],
      ['g_q', 'QGemm int8 per-axis', 128, 128, 'already int8 (QGemm per-axis)'],
      ['i_q', 'MatMulInteger uint8', 128, 128, 'already uint8 (MatMulInteger)'],
      ['nb_q', 'MatMulNBits 4-bit', 1024, 512, 'already 4-bit (MatMulNBits)'],
      ['e_q', 'GatherBlockQuantized 4-bit', 6400, 3200, 'already 4-bit (GatherBlockQuantized)'],
      ['sub_q', 'DequantizeLinear uint8 per-tensor', 8, 8, 'already uint8 (DequantizeLinear per-tensor)'],
    ]);
  });

  it('inspect counts them by form, and prints them by form without granularity', () => {
    const report = inspectModel(model());
    expect(report.quantized).toEqual({
      tensors: 10,
      bytes: 256 + 256 + 256 + 576 + 128 * 3 + 512 + 3200 + 8,
      byForm: {
        'DequantizeLinear uint8 per-tensor': 1,
        'DequantizeLinear int8 per-tensor': 1,
        'DequantizeLinear uint8 per-axis': 1,
        'DequantizeLinear int4 blocked': 1,
        'GatherBlockQuantized 4-bit': 1,
        'MatMulInteger uint8': 1,
        'MatMulNBits 4-bit': 1,
        'QGemm int8 per-axis': 1,
        'QLinearConv int8 per-axis': 1,
        'QLinearMatMul uint8 per-tensor': 1,
      },
    });
    expect(Object.keys(report.quantized.byForm)).toEqual([
      'DequantizeLinear int4 blocked',
      'DequantizeLinear int8 per-tensor',
      'DequantizeLinear uint8 per-axis',
      'DequantizeLinear uint8 per-tensor',
      'GatherBlockQuantized 4-bit',
      'MatMulInteger uint8',
      'MatMulNBits 4-bit',
      'QGemm int8 per-axis',
      'QLinearConv int8 per-axis',
      'QLinearMatMul uint8 per-tensor',
    ]);
    expect(renderInspect(report)).toContain(
      'quantized weights: 10 tensors, 5.45 kB: 2 DequantizeLinear uint8, 1 DequantizeLinear int4, 1 DequantizeLinear int8, 1 GatherBlockQuantized 4-bit, 1 MatMulInteger uint8, 1 MatMulNBits 4-bit, 1 QGemm int8, 1 QLinearConv int8, 1 QLinearMatMul uint8\n',
    );
  });

  it('finds none in a float model', () => {
    const proto = {
      ir_version: 8,
      opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'g',
        node: [n('MatMul', ['x', 'w'], ['y'])],
        input: [{ name: 'x' }],
        output: [{ name: 'y' }],
        initializer: [t('w', [4, 4], FLOAT, 64)],
      },
    };
    const m = new Model(decode<ModelProto>('onnx.ModelProto', encode('onnx.ModelProto', proto)));
    expect(findQuantizedWeights(m)).toEqual([]);
    expect(inspectModel(m).quantized).toEqual({ tensors: 0, bytes: 0, byForm: {} });
    expect(renderInspect(inspectModel(m))).not.toContain('quantized weights');
  });
});
