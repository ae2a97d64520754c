// Building the few nodes the sharing passes add.
import { AttributeType, type AttributeProto } from '../ir/onnx.js';

export function intsAttribute(name: string, values: number[]): AttributeProto {
  return { name, ints: values, type: AttributeType.INTS, floats: [], strings: [], tensors: [], graphs: [], type_protos: [], sparse_tensors: [] };
}
