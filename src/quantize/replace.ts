// Rewriting a weight as quantized storage plus a dequantizing node that recreates it under its
// own name (ir/build.ts replaceWeight puts them in place), so that every consumer (subgraphs
// included) keeps reading the same value name.
import { makeNode } from '../ir/build.js';
import { DataType, type AttributeProto, type NodeProto, type TensorProto } from '../ir/onnx.js';
import { toHalf } from '../ir/half.js';
import type { NameAllocator } from '../ir/names.js';
import { makeTensor } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';

/** How dequantizeWeight names what it adds: the codes' and zero point's suffixes, and whether the node gets a name. */
export interface WeightNaming {
  codes: string;
  zeroPoint: string;
  nodeName: boolean;
}

const DEFAULT_NAMING: WeightNaming = { codes: '_quantized', zeroPoint: '_zero_point', nodeName: true };

/** A DequantizeLinear node recreating `weight` from quantized codes. */
export function dequantizeWeight(
  weight: Weight,
  names: NameAllocator,
  q: { dataType: number; dims: number[]; bytes: Uint8Array },
  scale: { dims: number[]; values: Float32Array /** float16 stores the scales as float16 (opset 19+) */; dataType?: number },
  zeroPoint: { dataType: number; bytes: Uint8Array } | undefined,
  attributes: AttributeProto[],
  naming: WeightNaming = DEFAULT_NAMING,
): { initializers: TensorProto[]; node: NodeProto } {
  const qName = names.fresh(`${weight.name}${naming.codes}`);
  const sName = names.fresh(`${weight.name}_scale`);
  const initializers = [
    makeTensor(qName, q.dataType, q.dims, q.bytes),
    scale.dataType === DataType.FLOAT16 || scale.dataType === DataType.BFLOAT16
      ? makeTensor(
          sName,
          scale.dataType,
          scale.dims,
          new Uint8Array(toHalf(scale.values, scale.dataType === DataType.BFLOAT16).bits.buffer),
        )
      : makeTensor(
          sName,
          DataType.FLOAT,
          scale.dims,
          new Uint8Array(scale.values.buffer, scale.values.byteOffset, scale.values.byteLength),
        ),
  ];
  const inputs = [qName, sName];
  if (zeroPoint) {
    const zName = names.fresh(`${weight.name}${naming.zeroPoint}`);
    initializers.push(makeTensor(zName, zeroPoint.dataType, scale.dims, zeroPoint.bytes));
    inputs.push(zName);
  }
  const nodeName = naming.nodeName ? names.fresh(`${weight.name}_DequantizeLinear`) : '';
  const node = makeNode('DequantizeLinear', inputs, [weight.name], nodeName, attributes);
  return { initializers, node };
}
