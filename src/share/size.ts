// What storing a weight costs in the file, protobuf framing and names included: a rewrite that
// adds nodes and small initializers can cost more than it saves on a small tensor.
import { encodedSize } from '../io/codec.js';
import type { NodeProto, TensorProto } from '../ir/onnx.js';
import type { Model } from '../ir/model.js';
import { tensorByteLength } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';

/** Bytes the weight's storage (initializer or Constant node) takes in the written file. */
export function storedSize(model: Model, w: Weight): number {
  if (model.external.has(w.tensor)) {
    return tensorByteLength(model, w.tensor) + encodedSize('onnx.TensorProto', { ...w.tensor, external_data: [] });
  }
  return w.constant ? encodedSize('onnx.NodeProto', w.constant) : encodedSize('onnx.TensorProto', w.tensor);
}

/** Bytes the given initializers and nodes take in the written file. */
export function addedSize(initializers: TensorProto[], nodes: NodeProto[]): number {
  return initializers.reduce((n, t) => n + encodedSize('onnx.TensorProto', t), 0) + nodes.reduce((n, x) => n + encodedSize('onnx.NodeProto', x), 0);
}
