// Evaluation data on disk: TensorProto .pb files (ONNX's test_data_set_N layout) and NumPy .npy files.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { DecodeError, decode } from './codec.js';
import { DATA_FILE_LIMIT, insideDataFolder, readInput, realFolder } from './input-path.js';
import { DataType, TENSOR_LOCATION_EXTERNAL, type TensorProto } from '../ir/onnx.js';
import { tensorValues, numElements, toNumber, type Typed } from '../ir/tensor.js';
import { tensorSizeProblem } from '../ir/validate.js';

/** A run-time array's values: a tensor's typed array, or strings. */
export type ArrayData = Typed | string[];

/** A named array of values: what models read and write at run time. */
export interface NamedArray {
  name: string;
  /** ONNX element type (TensorProto.DataType). */
  dtype: number;
  dims: number[];
  data: ArrayData;
}

/**
 * The values of a decoded TensorProto as a NamedArray (strings decoded as UTF-8). Its data must match
 * its shape exactly, as a model's tensors must; `where` names the file in errors.
 */
export function arrayFromTensor(t: TensorProto, fallbackName = '', where?: string): NamedArray {
  const at = where === undefined ? '' : `${where}: `;
  if (t.data_location === TENSOR_LOCATION_EXTERNAL)
    throw new InputError(`${at}tensor '${t.name ?? fallbackName}' keeps its data in an external file, which a tensor file cannot`);
  const problem = tensorSizeProblem(t);
  if (problem) throw new InputError(at + problem);
  const dims = t.dims.map(toNumber);
  const data: ArrayData =
    t.data_type === DataType.STRING
      ? t.string_data.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString('utf8'))
      : tensorValues(t);
  return { name: t.name || fallbackName, dtype: t.data_type ?? 0, dims, data };
}

/** Reads a .pb (TensorProto) or .npy file; `file` is what is opened when not `path` (a resolved path inside a data folder). */
export function readTensorFile(path: string, file = path): NamedArray {
  const bytes = readInput(path, { file, limit: DATA_FILE_LIMIT, what: 'data file' });
  if (path.endsWith('.npy')) return parseNpy(bytes, path);
  let t: TensorProto;
  try {
    t = decode<TensorProto>('onnx.TensorProto', bytes);
  } catch (e) {
    if (e instanceof DecodeError) throw new InputError(`${path}: not a TensorProto file (${e.message})`);
    throw e;
  }
  if (t.data_type === undefined) throw new InputError(`${path}: not a TensorProto file (no data type)`);
  return arrayFromTensor(t, '', path);
}

const NPY_TYPES: Record<string, number> = {
  f4: DataType.FLOAT,
  f8: DataType.DOUBLE,
  f2: DataType.FLOAT16,
  i1: DataType.INT8,
  u1: DataType.UINT8,
  i2: DataType.INT16,
  u2: DataType.UINT16,
  i4: DataType.INT32,
  u4: DataType.UINT32,
  i8: DataType.INT64,
  u8: DataType.UINT64,
  b1: DataType.BOOL,
};

/** Where a .npy file's values are and what they are, from its header. */
export interface NpyLayout {
  dtype: number;
  dims: number[];
  /** Offset of the values. */
  start: number;
  /** Bytes the values take: elements × element size. */
  byteLength: number;
}

/**
 * Reads a .npy header (format versions 1-3, little-endian, C order). With `partial`, `bytes` may be
 * only the start of the file (an .npz entry not yet inflated): undefined when the header is not all there.
 */
export function npyLayout(bytes: Uint8Array, where: string, partial = false): NpyLayout | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 && partial) return undefined;
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new InputError(`${where}: not a .npy file`);
  const major = buf[6]!;
  if (major < 1 || major > 3) throw new InputError(`${where}: .npy format version ${major} is not supported`);
  if (major > 1 && buf.length < 12) {
    if (partial) return undefined;
    throw new InputError(`${where}: truncated .npy header`);
  }
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  if (start > buf.length) {
    if (partial) return undefined;
    throw new InputError(`${where}: truncated .npy header`);
  }
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shape) throw new InputError(`${where}: unreadable .npy header`);
  if (descr[1] === '>') throw new InputError(`${where}: big-endian .npy data is not supported`);
  if (order[1] === 'True') throw new InputError(`${where}: Fortran-ordered .npy data is not supported`);
  const dtype = NPY_TYPES[descr[2]! + descr[3]!];
  if (dtype === undefined) throw new InputError(`${where}: .npy dtype '${descr[2]}${descr[3]}' is not supported`);
  const parts = shape[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.some((d) => !/^\d+$/.test(d))) throw new InputError(`${where}: unreadable .npy shape (${shape[1]})`);
  const dims = parts.map(Number);
  const byteLength = numElements(dims) * Number(descr[3]);
  if (!Number.isSafeInteger(byteLength)) throw new InputError(`${where}: .npy shape (${dims.join(', ')}) is too large`);
  return { dtype, dims, start, byteLength };
}

/** Parses a NumPy .npy file (format versions 1-3, little-endian, C order); its values must fill it exactly. */
export function parseNpy(bytes: Uint8Array, where: string): NamedArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { dtype, dims, start, byteLength } = npyLayout(buf, where)!;
  if (buf.length - start !== byteLength) {
    throw new InputError(`${where}: shape (${dims.join(', ')}) needs ${byteLength} bytes of values, the file holds ${buf.length - start}`);
  }
  const t: TensorProto = {
    dims,
    data_type: dtype,
    raw_data: buf.subarray(start),
    float_data: [],
    int32_data: [],
    string_data: [],
    int64_data: [],
    double_data: [],
    uint64_data: [],
    external_data: [],
    metadata_props: [],
  };
  return arrayFromTensor(t, '', where);
}

export function readNpy(path: string): NamedArray {
  return parseNpy(readInput(path, { limit: DATA_FILE_LIMIT, what: 'data file' }), path);
}

export interface TestDataSet {
  dir: string;
  inputs: NamedArray[];
  outputs: NamedArray[];
}

/** The folder evaluation data was found in (the --data folder): nothing found inside may lead out of it. */
export interface DataFolder {
  dir: string;
  /** Its real path. */
  real: string;
}

export function dataFolder(dir: string): DataFolder {
  return { dir, real: realFolder(dir) };
}

/** A file found inside a data folder: `path` names it, `file` (its real path, checked inside the folder) is what is read. */
export interface FoundFile {
  path: string;
  file: string;
}

export function findInDataFolder(path: string, folder: DataFolder): FoundFile {
  return { path, file: insideDataFolder(path, folder.dir, folder.real) };
}

function numbered(dir: string, prefix: string, folder: DataFolder): FoundFile[] {
  return readdirSync(dir)
    .map((f) => ({ f, m: new RegExp(`^${prefix}_(\\d+)\\.(pb|npy)$`).exec(f) }))
    .filter((e) => e.m)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((e) => findInDataFolder(join(dir, e.f), folder));
}

function requireFolder(dir: string): void {
  let isFolder = false;
  try {
    isFolder = statSync(dir).isDirectory();
  } catch {
    /* missing: said below */
  }
  if (!isFolder) throw new InputError(`${dir}: not a folder`);
}

/**
 * Reads one test_data_set_N folder: input_K.pb / output_K.pb (or .npy), in K order. `within` is the
 * data folder it was found in (default: itself); every file must resolve inside it.
 */
export function readTestDataSet(dir: string, within: string | DataFolder = dir): TestDataSet {
  requireFolder(dir);
  const folder = typeof within === 'string' ? dataFolder(within) : within;
  findInDataFolder(dir, folder);
  const read = (f: FoundFile) => readTensorFile(f.path, f.file);
  return { dir, inputs: numbered(dir, 'input', folder).map(read), outputs: numbered(dir, 'output', folder).map(read) };
}

/** The test_data_set_N folders inside `dir` (or `dir` itself when it is one), in N order; none may lead out of `dir`. */
export function findTestDataSets(dir: string): string[] {
  requireFolder(dir);
  const folder = dataFolder(dir);
  if (numbered(dir, 'input', folder).length > 0) return [dir];
  return readdirSync(dir)
    .map((f) => ({ f, m: /^test_data_set_(\d+)$/.exec(f) }))
    .filter((e) => e.m && statSync(findInDataFolder(join(dir, e.f), folder).file).isDirectory())
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((e) => join(dir, e.f));
}
