// TypeScript shapes of the decoded ONNX messages (src/io/onnx.proto, decoded by src/io/codec.ts).
// Conventions of the codec: an optional scalar is present as an own property only when the
// file had it (proto2 presence), repeated fields are always arrays, int64 values are numbers
// unless they do not fit a double exactly, then bigint. Byte fields are views into the file.

import type { TensorData } from './data.js';

export type Int64 = number | bigint;

/** Raw bytes of fields this schema does not know, kept so that they survive a round trip. */
export interface Unknown {
  $unknown?: Uint8Array[];
}

export interface StringStringEntryProto extends Unknown {
  key?: string;
  value?: string;
}

export interface OperatorSetIdProto extends Unknown {
  domain?: string;
  version?: Int64;
}

export interface TensorSegment extends Unknown {
  begin?: Int64;
  end?: Int64;
}

export interface TensorProto extends Unknown {
  dims: Int64[];
  data_type?: number;
  segment?: TensorSegment;
  float_data: Float32Array | number[];
  int32_data: Int32Array | number[];
  string_data: Uint8Array[];
  int64_data: BigInt64Array | bigint[];
  name?: string;
  /** Decoded: a view into the file. After reading, large payloads may stay in a file (ir/data.ts). */
  raw_data?: TensorData;
  double_data: Float64Array | number[];
  uint64_data: BigUint64Array | bigint[];
  doc_string?: string;
  external_data: StringStringEntryProto[];
  data_location?: number;
  metadata_props: StringStringEntryProto[];
}

export interface SparseTensorProto extends Unknown {
  values?: TensorProto;
  indices?: TensorProto;
  dims: Int64[];
}

export interface TensorShapeDimension extends Unknown {
  dim_value?: Int64;
  dim_param?: string;
  denotation?: string;
}

export interface TensorShapeProto extends Unknown {
  dim: TensorShapeDimension[];
}

export interface TypeProto extends Unknown {
  tensor_type?: { elem_type?: number; shape?: TensorShapeProto } & Unknown;
  sequence_type?: { elem_type?: TypeProto } & Unknown;
  map_type?: { key_type?: number; value_type?: TypeProto } & Unknown;
  opaque_type?: { domain?: string; name?: string } & Unknown;
  sparse_tensor_type?: { elem_type?: number; shape?: TensorShapeProto } & Unknown;
  optional_type?: { elem_type?: TypeProto } & Unknown;
  denotation?: string;
}

export interface ValueInfoProto extends Unknown {
  name?: string;
  type?: TypeProto;
  doc_string?: string;
  metadata_props: StringStringEntryProto[];
}

export interface AttributeProto extends Unknown {
  name?: string;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  doc_string?: string;
  tp?: TypeProto;
  type_protos: TypeProto[];
  type?: number;
  ref_attr_name?: string;
  sparse_tensor?: SparseTensorProto;
  sparse_tensors: SparseTensorProto[];
}

export interface NodeProto extends Unknown {
  input: string[];
  output: string[];
  name?: string;
  op_type?: string;
  attribute: AttributeProto[];
  doc_string?: string;
  domain?: string;
  overload?: string;
  metadata_props: StringStringEntryProto[];
  device_configurations: unknown[];
}

export interface TensorAnnotation extends Unknown {
  tensor_name?: string;
  quant_parameter_tensor_names: StringStringEntryProto[];
}

export interface GraphProto extends Unknown {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  doc_string?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  value_info: ValueInfoProto[];
  quantization_annotation: TensorAnnotation[];
  sparse_initializer: SparseTensorProto[];
  metadata_props: StringStringEntryProto[];
}

export interface TrainingInfoProto extends Unknown {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initialization_binding: StringStringEntryProto[];
  update_binding: StringStringEntryProto[];
}

export interface FunctionProto extends Unknown {
  name?: string;
  input: string[];
  output: string[];
  attribute: string[];
  node: NodeProto[];
  doc_string?: string;
  opset_import: OperatorSetIdProto[];
  domain?: string;
  attribute_proto: AttributeProto[];
  value_info: ValueInfoProto[];
  overload?: string;
  metadata_props: StringStringEntryProto[];
}

export interface ModelProto extends Unknown {
  ir_version?: Int64;
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: Int64;
  doc_string?: string;
  graph?: GraphProto;
  opset_import: OperatorSetIdProto[];
  metadata_props: StringStringEntryProto[];
  training_info: TrainingInfoProto[];
  functions: FunctionProto[];
  configuration: unknown[];
}

/** TensorProto.DataType */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  FLOAT8E8M0: 24,
  UINT2: 25,
  INT2: 26,
  FLOAT6E2M3: 27,
  FLOAT6E3M2: 28,
} as const;

/** AttributeProto.AttributeType */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

export const TENSOR_LOCATION_EXTERNAL = 1;
