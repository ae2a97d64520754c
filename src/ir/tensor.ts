// Tensor values: element counts, raw little-endian bytes wherever the data lives (raw_data, the
// typed repeated fields, or an external file), typed-array views of them, and Constant nodes.
import type { AttributeProto, Int64, NodeProto, TensorProto } from './onnx.js';
import { DataType } from './onnx.js';
import { dataOf, fileRangeOf } from './data.js';
import { dtypeInfo, rawByteLength } from './dtype.js';
import { readRange, readRangeInto } from './file-range.js';
import { fromFloat16 } from './half.js';

export function toNumber(v: Int64): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** Number of elements (1 for a scalar). */
export function numElements(dims: readonly Int64[]): number {
  let n = 1;
  for (const d of dims) n *= toNumber(d);
  return n;
}

/** Bytes the tensor's values take (raw, packed), whatever field holds them. */
export function tensorByteLength(t: TensorProto): number {
  const data = dataOf(t);
  if (data) return data.byteLength;
  if (t.data_type === DataType.STRING) return t.string_data.reduce((n, s) => n + s.byteLength, 0);
  return rawByteLength(t.data_type, numElements(t.dims));
}

function narrow(values: ArrayLike<number>, bytesPerElement: number, count: number): Uint8Array {
  const out = new Uint8Array(count * bytesPerElement);
  if (bytesPerElement === 1) for (let i = 0; i < count; i++) out[i] = values[i]! & 0xff;
  else {
    const u16 = new Uint16Array(out.buffer);
    for (let i = 0; i < count; i++) u16[i] = values[i]! & 0xffff;
  }
  return out;
}

function bytesOfTyped(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** The typed repeated field's values as raw little-endian bytes (as raw_data would hold them). */
function typedFieldBytes(t: TensorProto): Uint8Array {
  const info = dtypeInfo(t.data_type);
  if (!info) throw new Error(`tensor '${t.name ?? ''}' has unknown data type ${t.data_type}`);
  const count = numElements(t.dims);
  switch (info.field) {
    case 'float_data':
      return bytesOfTyped(t.float_data instanceof Float32Array ? t.float_data : Float32Array.from(t.float_data));
    case 'double_data':
      return bytesOfTyped(t.double_data instanceof Float64Array ? t.double_data : Float64Array.from(t.double_data));
    case 'int64_data':
      return bytesOfTyped(t.int64_data instanceof BigInt64Array ? t.int64_data : BigInt64Array.from(t.int64_data));
    case 'uint64_data': {
      const values = t.uint64_data instanceof BigUint64Array ? t.uint64_data : BigUint64Array.from(t.uint64_data);
      if (info.bits === 64) return bytesOfTyped(values);
      return bytesOfTyped(Uint32Array.from(values, (v) => Number(v & 0xffffffffn)));
    }
    case 'int32_data': {
      const values = t.int32_data;
      if (info.bits === 32) return bytesOfTyped(values instanceof Int32Array ? values : Int32Array.from(values));
      if (info.bits === 16) return narrow(values, 2, count);
      if (info.bits === 8) return narrow(values, 1, count);
      // Sub-byte types: each int32 entry holds one byte of packed elements.
      return narrow(values, 1, rawByteLength(t.data_type, count));
    }
    case 'string_data':
      throw new Error('string tensors have no raw byte form');
  }
}

/**
 * The tensor's values as raw little-endian bytes. A view where the data is already in memory
 * (raw_data), a copy where it must be converted, a fresh read where it lives in an external file.
 */
export function tensorBytes(t: TensorProto): Uint8Array {
  const data = dataOf(t);
  if (data instanceof Uint8Array) return data;
  if (data) return data.load();
  return typedFieldBytes(t);
}

/** The typed arrays a tensor's values come in (float16/bfloat16 as Uint16 bits, sub-byte types packed in Uint8). */
export type Typed =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

const VIEW: Partial<
  Record<number, { new (b: ArrayBuffer, o: number, n: number): Typed; new (n: number): Typed; BYTES_PER_ELEMENT: number }>
> = {
  [DataType.FLOAT]: Float32Array,
  [DataType.DOUBLE]: Float64Array,
  [DataType.INT8]: Int8Array,
  [DataType.UINT8]: Uint8Array,
  [DataType.BOOL]: Uint8Array,
  [DataType.INT16]: Int16Array,
  [DataType.UINT16]: Uint16Array,
  [DataType.FLOAT16]: Uint16Array,
  [DataType.BFLOAT16]: Uint16Array,
  [DataType.INT32]: Int32Array,
  [DataType.UINT32]: Uint32Array,
  [DataType.INT64]: BigInt64Array,
  [DataType.UINT64]: BigUint64Array,
};

/**
 * The tensor's values as a typed array of its element type (float16/bfloat16 as their Uint16 bit
 * patterns; sub-byte and float8 types as packed Uint8 bytes). A view over the file's bytes when
 * they are aligned for the element size, otherwise one aligned copy.
 */
export function tensorValues(t: TensorProto): Typed {
  const bytes = tensorBytes(t);
  const Ctor = VIEW[t.data_type ?? 0] ?? Uint8Array;
  const size = Ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0)
    throw new Error(`tensor '${t.name ?? ''}' has ${bytes.byteLength} bytes, not a whole number of elements`);
  if (bytes.byteOffset % size === 0) return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size);
  const copy = new Ctor(bytes.byteLength / size);
  new Uint8Array(copy.buffer).set(bytes);
  return copy;
}

/**
 * float32 values still in a file: read where the caller wants them (the kernels' own memory). Plain
 * data, so that a worker thread can read them itself.
 */
export interface FloatSource {
  file: string;
  /** Byte offset of the values in the file. */
  offset: number;
  /** Number of values. */
  length: number;
}

/** Reads a FloatSource's values into `into` (of its length). */
export function readFloats(source: FloatSource, into: Float32Array): void {
  readRangeInto(source.file, source.offset, new Uint8Array(into.buffer, into.byteOffset, source.length * 4));
}

/** A tensor's raw bytes still in a file (plain data, so that a worker thread can read them itself). */
export interface ByteRange {
  file: string;
  offset: number;
  byteLength: number;
}

/** Where a tensor's bytes are in a file, as plain data; undefined when they are in memory. */
function inFile(t: TensorProto): ByteRange | undefined {
  const range = fileRangeOf(t);
  return range && { file: range.file, offset: range.offset, byteLength: range.length };
}

/** A tensor's bytes as a ByteRange when they are still in a file, else as tensorBytes gives them. */
export function byteSource(t: TensorProto): Uint8Array | ByteRange {
  return inFile(t) ?? tensorBytes(t);
}

/**
 * A float32 tensor's values as a FloatSource when they are still in a file (saving a buffer and a
 * copy per tensor), otherwise as floatValues gives them.
 */
export function floatSource(t: TensorProto): Float32Array | FloatSource {
  const range = t.data_type === DataType.FLOAT ? inFile(t) : undefined;
  if (range && range.byteLength % 4 === 0) return { file: range.file, offset: range.offset, length: range.byteLength / 4 };
  return floatValues(t);
}

/** The bytes of a byteSource, in memory. */
export function bytesOf(source: Uint8Array | ByteRange): Uint8Array {
  return source instanceof Uint8Array ? source : readRange(source.file, source.offset, source.byteLength);
}

/** The values of a FloatSource in an array of their own. */
export function toFloat32(values: Float32Array | FloatSource): Float32Array {
  if (values instanceof Float32Array) return values;
  const out = new Float32Array(values.length);
  readFloats(values, out);
  return out;
}

/** float32 values of a FLOAT, DOUBLE, FLOAT16 or BFLOAT16 tensor (a copy unless already float32). */
export function floatValues(t: TensorProto): Float32Array {
  const values = tensorValues(t);
  switch (t.data_type) {
    case DataType.FLOAT:
      return values as Float32Array;
    case DataType.DOUBLE:
      return Float32Array.from(values as Float64Array);
    case DataType.FLOAT16:
      return fromFloat16(values as Uint16Array);
    case DataType.BFLOAT16: {
      const out = new Float32Array(values.length);
      const bits = new Uint32Array(out.buffer);
      const src = values as Uint16Array;
      for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
      return out;
    }
    default:
      throw new Error(`tensor '${t.name ?? ''}' is not floating point`);
  }
}

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** The value of a Constant node as a TensorProto (value, value_float(s), value_int(s)); undefined for other forms. */
export function constantTensor(node: NodeProto): TensorProto | undefined {
  if (node.op_type !== 'Constant' || (node.domain ?? '') !== '') return undefined;
  const value = attr(node, 'value');
  if (value?.t) return value.t;
  const base = (dataType: number, dims: number[]): TensorProto => ({
    ...emptyTensor(),
    name: node.output[0] ?? '',
    data_type: dataType,
    dims,
  });
  const f = attr(node, 'value_float');
  if (f?.f !== undefined) return { ...base(DataType.FLOAT, []), float_data: Float32Array.of(f.f) };
  const fs = attr(node, 'value_floats');
  if (fs) return { ...base(DataType.FLOAT, [fs.floats.length]), float_data: Float32Array.from(fs.floats) };
  const i = attr(node, 'value_int');
  if (i?.i !== undefined) return { ...base(DataType.INT64, []), int64_data: BigInt64Array.of(BigInt(i.i)) };
  const is = attr(node, 'value_ints');
  if (is) return { ...base(DataType.INT64, [is.ints.length]), int64_data: BigInt64Array.from(is.ints, (v) => BigInt(v)) };
  return undefined;
}

/** A TensorProto with every repeated field empty, ready to be filled in. */
export function emptyTensor(): TensorProto {
  return {
    dims: [],
    float_data: [],
    int32_data: [],
    string_data: [],
    int64_data: [],
    double_data: [],
    uint64_data: [],
    external_data: [],
    metadata_props: [],
  };
}

/** A new tensor holding `bytes` as raw_data. */
export function makeTensor(name: string, dataType: number, dims: number[], bytes: Uint8Array): TensorProto {
  return { ...emptyTensor(), dims, data_type: dataType, name, raw_data: bytes };
}

/**
 * The bytes of a [rows, cols] matrix stored transposed, as [cols, rows]. `size` is bytes per element:
 * whole bytes, or 0.5 for 4-bit types (two a byte, the first in the low bits).
 */
export function transposedBytes(bytes: Uint8Array, rows: number, cols: number, size: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  if (size === 0.5) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const from = r * cols + c,
          to = c * rows + r;
        const v = (bytes[from >> 1]! >> ((from & 1) * 4)) & 15;
        out[to >> 1] = out[to >> 1]! | (v << ((to & 1) * 4));
      }
    }
    return out;
  }
  if (size === 4) {
    // Whole 32-bit elements move at once; the copy aligns them whatever the source's offset.
    const src = new Uint32Array(Uint8Array.from(bytes).buffer),
      dst = new Uint32Array(out.buffer);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c]!;
    return out;
  }
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const from = (r * cols + c) * size,
        to = (c * rows + r) * size;
      for (let b = 0; b < size; b++) out[to + b] = bytes[from + b]!;
    }
  }
  return out;
}
