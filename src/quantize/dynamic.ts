// The dynamic int8 form, which computes in integers on CPU: each MatMul (or plain Gemm) that reads a
// quantized weight becomes DynamicQuantizeLinear(A) → MatMulInteger(A_q, W_q, A_zp, W_zp) → Cast →
// Mul(A_scale · W_scale) (→ Add(C) for Gemm): the pattern ONNX Runtime fuses into its
// DynamicQuantizeMatMul kernel.
import { DataType, type NodeProto, type TensorProto } from '../ir/onnx.js';
import type { ModelEditor } from '../ir/editor.js';
import { makeTensor, toNumber } from '../ir/tensor.js';
import type { Weight, WeightUse } from '../ir/weights.js';
import { intAttribute, makeNode, replaceWeight } from '../ir/build.js';

function attrNumber(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  if (!a) return fallback;
  return a.f !== undefined ? a.f : a.i !== undefined ? toNumber(a.i) : fallback;
}

/** Whether a use can take the integer form: MatMul, or Gemm computing A·B (+ C) without scaling or transposed A. */
export function dynamicEligible(use: WeightUse): boolean {
  if (use.role === 'matmul') return true;
  if (use.role !== 'gemm') return false;
  return attrNumber(use.node, 'transA', 0) === 0 && attrNumber(use.node, 'alpha', 1) === 1 && attrNumber(use.node, 'beta', 1) === 1;
}

/**
 * Rewrites every use of `weight` into the integer form. `codes` are laid out as [K, N] (already
 * transposed for a Gemm with transB), with one scale and zero point per column N.
 */
export function rewriteDynamic(
  edits: ModelEditor,
  weight: Weight,
  K: number,
  N: number,
  codes: Int8Array | Uint8Array,
  scales: Float32Array,
  zeroPoints: Int8Array | Uint8Array,
  signed: boolean,
): TensorProto[] {
  const type = signed ? DataType.INT8 : DataType.UINT8;
  const names = edits.names;
  const qName = names.fresh(`${weight.name}_quantized`);
  const sName = names.fresh(`${weight.name}_scale`);
  // MatMulInteger takes a zero point of 0 when none is given: symmetric weights store none.
  const zName = signed ? '' : names.fresh(`${weight.name}_zero_point`);
  const initializers = [
    makeTensor(qName, type, [K, N], new Uint8Array(codes.buffer, codes.byteOffset, codes.byteLength)),
    makeTensor(sName, DataType.FLOAT, [N], new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength)),
  ];
  if (zName)
    initializers.push(makeTensor(zName, type, [N], new Uint8Array(zeroPoints.buffer, zeroPoints.byteOffset, zeroPoints.byteLength)));
  for (const use of weight.uses) {
    const node = use.node;
    const base = node.name || weight.name;
    const input = node.input[0]!;
    const output = node.output[0]!;
    const aq = names.fresh(`${input}_quantized`),
      as = names.fresh(`${input}_scale`),
      az = names.fresh(`${input}_zero_point`);
    const yInt = names.fresh(`${output}_int32`),
      yFloat = names.fresh(`${output}_int32_float`),
      scale = names.fresh(`${output}_scale`);
    const product = use.role === 'gemm' && node.input[2] ? names.fresh(`${output}_product`) : output;
    const nodes: NodeProto[] = [
      makeNode('DynamicQuantizeLinear', [input], [aq, as, az], names.fresh(`${base}_DynamicQuantizeLinear`)),
      makeNode('MatMulInteger', [aq, qName, az, ...(zName ? [zName] : [])], [yInt], names.fresh(`${base}_MatMulInteger`)),
      makeNode('Cast', [yInt], [yFloat], names.fresh(`${base}_Cast`), [intAttribute('to', DataType.FLOAT)]),
      makeNode('Mul', [as, sName], [scale], names.fresh(`${base}_scale_Mul`)),
      makeNode('Mul', [yFloat, scale], [product], names.fresh(`${base}_output_Mul`)),
    ];
    if (product !== output) nodes.push(makeNode('Add', [product, node.input[2]!], [output], names.fresh(`${base}_bias_Add`)));
    edits.graph(use.graph).replaceNode(node, nodes);
  }
  replaceWeight(edits, weight, initializers, []);
  return initializers;
}
