// Evaluation data on disk: TensorProto .pb files (ONNX's test_data_set_N layout) and NumPy .npy files.
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { InputError } from '../errors.js';
import { DecodeError, decode } from './codec.js';
import { DataType, type TensorProto } from './types.js';
import { tensorValues, numElements, toNumber } from '../ir/tensor.js';

export type ArrayData = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | string[];

/** A named array of values: what models read and write at run time. */
export interface NamedArray {
  name: string;
  /** ONNX element type (TensorProto.DataType). */
  dtype: number;
  dims: number[];
  data: ArrayData;
}

/** The values of a decoded TensorProto as a NamedArray (strings decoded as UTF-8). */
export function arrayFromTensor(t: TensorProto, fallbackName = ''): NamedArray {
  const dims = t.dims.map(toNumber);
  const data: ArrayData = t.data_type === DataType.STRING
    ? t.string_data.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString('utf8'))
    : tensorValues(undefined, t);
  if (t.data_type !== DataType.STRING && data.length !== numElements(dims) && (t.data_type ?? 0) <= DataType.BFLOAT16) {
    throw new InputError(`tensor '${t.name ?? fallbackName}' has ${data.length} values for shape [${dims.join(', ')}]`);
  }
  return { name: t.name || fallbackName, dtype: t.data_type ?? 0, dims, data };
}

export function readTensorFile(path: string): NamedArray {
  if (path.endsWith('.npy')) return readNpy(path);
  let t: TensorProto;
  try {
    t = decode<TensorProto>('onnx.TensorProto', readFileSync(path));
  } catch (e) {
    if (e instanceof DecodeError) throw new InputError(`${path}: not a TensorProto file (${e.message})`);
    throw e;
  }
  if (t.data_type === undefined) throw new InputError(`${path}: not a TensorProto file (no data type)`);
  return arrayFromTensor(t);
}

const NPY_TYPES: Record<string, number> = {
  f4: DataType.FLOAT, f8: DataType.DOUBLE, f2: DataType.FLOAT16, i1: DataType.INT8, u1: DataType.UINT8,
  i2: DataType.INT16, u2: DataType.UINT16, i4: DataType.INT32, u4: DataType.UINT32, i8: DataType.INT64,
  u8: DataType.UINT64, b1: DataType.BOOL,
};

/** Parses a NumPy .npy file (format versions 1-3, little-endian, C order). */
export function parseNpy(bytes: Uint8Array, where: string): NamedArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new InputError(`${where}: not a .npy file`);
  const major = buf[6]!;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  if (start > buf.length) throw new InputError(`${where}: truncated .npy header`);
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shape) throw new InputError(`${where}: unreadable .npy header`);
  if (descr[1] === '>') throw new InputError(`${where}: big-endian .npy data is not supported`);
  if (order[1] === 'True') throw new InputError(`${where}: Fortran-ordered .npy data is not supported`);
  const dtype = NPY_TYPES[descr[2]! + descr[3]!];
  if (dtype === undefined) throw new InputError(`${where}: .npy dtype '${descr[2]}${descr[3]}' is not supported`);
  const dims = shape[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const t: TensorProto = {
    dims, data_type: dtype, raw_data: buf.subarray(start), float_data: [], int32_data: [], string_data: [],
    int64_data: [], double_data: [], uint64_data: [], external_data: [], metadata_props: [],
  };
  const array = arrayFromTensor(t);
  if (array.data.length !== numElements(dims)) throw new InputError(`${where}: ${array.data.length} values for shape [${dims.join(', ')}]`);
  return array;
}

export function readNpy(path: string): NamedArray {
  return parseNpy(readFileSync(path), path);
}

export interface TestDataSet {
  dir: string;
  inputs: NamedArray[];
  outputs: NamedArray[];
}

function numbered(dir: string, prefix: string): string[] {
  return readdirSync(dir)
    .map((f) => ({ f, m: new RegExp(`^${prefix}_(\\d+)\\.(pb|npy)$`).exec(f) }))
    .filter((e) => e.m)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((e) => confined(dir, join(dir, e.f)));
}

/** A data file must stay inside its folder: a link that leads elsewhere is refused. */
function confined(dir: string, path: string): string {
  const root = realpathSync(dir);
  const real = realpathSync(path);
  const rel = relative(root, real);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new InputError(`${path}: links outside its data folder ${dir}`);
  return path;
}

/** Reads one test_data_set_N folder: input_K.pb / output_K.pb (or .npy), in K order. */
export function readTestDataSet(dir: string): TestDataSet {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`${dir}: not a folder`);
  return { dir, inputs: numbered(dir, 'input').map(readTensorFile), outputs: numbered(dir, 'output').map(readTensorFile) };
}

/** The test_data_set_N folders inside `dir` (or `dir` itself when it is one), in N order. */
export function findTestDataSets(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`${dir}: not a folder`);
  if (numbered(dir, 'input').length > 0) return [dir];
  return readdirSync(dir)
    .map((f) => ({ f, m: /^test_data_set_(\d+)$/.exec(f) }))
    .filter((e) => e.m && statSync(join(dir, e.f)).isDirectory())
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((e) => join(dir, e.f));
}
