// Parameters as the pruning passes see them: an initializer, a Constant's value, or the values a
// ConstantOfShape generates from a stored shape (as in ONNX's "light" test models, whose weights are
// all one value: such a parameter shrinks by rewriting its shape).
import type { GraphIndex } from '../ir/graph.js';
import type { TensorProto } from '../ir/onnx.js';
import { constantTensor, tensorValues, toNumber } from '../ir/tensor.js';

/** A parameter read by a node: an initializer, a Constant's value, or ConstantOfShape of an initializer shape. */
export interface Param {
  name: string;
  dims: number[];
  tensor: TensorProto;
  /** The tensor is the shape of a ConstantOfShape (all entries equal). */
  shapeOnly: boolean;
  /** Nodes that must be the only readers for the parameter to change. */
  owner: string;
}

export function paramOf(index: GraphIndex, name: string): Param | undefined {
  const init = index.initializers.get(name);
  if (init) return { name, dims: init.dims.map(toNumber), tensor: init, shapeOnly: false, owner: name };
  const producer = index.producer.get(name);
  if (!producer) return undefined;
  const value = constantTensor(producer);
  if (value && producer.attribute.some((a) => a.name === 'value'))
    return { name, dims: value.dims.map(toNumber), tensor: value, shapeOnly: false, owner: name };
  if (producer.op_type === 'ConstantOfShape' && producer.input[0]) {
    const shape = index.initializers.get(producer.input[0]);
    if (shape?.dims.length !== 1) return undefined;
    const raw = Array.from(tensorValues(shape) as BigInt64Array, Number);
    // Both the generated value and its shape must belong to this parameter alone.
    if (index.consumersOf(producer.input[0]).length !== 1) return undefined;
    return { name, dims: raw, tensor: shape, shapeOnly: true, owner: name };
  }
  return undefined;
}
