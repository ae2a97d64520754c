// What storing a weight costs in the file, protobuf framing and names included: a rewrite that
// adds nodes and small initializers can cost more than it saves on a small tensor.
import { encodedSize } from '../io/codec.js';
import { TENSOR_LOCATION_EXTERNAL, type NodeProto, type TensorProto } from '../ir/onnx.js';
import { isExternalData } from '../ir/data.js';
import { tensorByteLength } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';

/** Bytes the weight's storage (initializer or Constant node) takes in the written file. */
export function storedSize(w: Weight): number {
  if (isExternalData(w.tensor)) {
    // Its bytes in the data file, and a message that marks it external (the location entries aside).
    const marker: TensorProto = { ...w.tensor, data_location: TENSOR_LOCATION_EXTERNAL };
    delete marker.raw_data;
    return tensorByteLength(w.tensor) + encodedSize('onnx.TensorProto', marker);
  }
  return w.constant ? encodedSize('onnx.NodeProto', w.constant) : encodedSize('onnx.TensorProto', w.tensor);
}

/** Bytes the given initializers and nodes take in the written file. */
export function addedSize(initializers: TensorProto[], nodes: NodeProto[]): number {
  return (
    initializers.reduce((n, t) => n + encodedSize('onnx.TensorProto', t), 0) +
    nodes.reduce((n, x) => n + encodedSize('onnx.NodeProto', x), 0)
  );
}
