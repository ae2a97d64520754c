// Facts about ONNX tensor element types: storage width, names, and which typed field holds them.
import { DataType } from './onnx.js';

export interface DtypeInfo {
  readonly code: number;
  readonly name: string;
  /** Bits per element in raw_data (0 for strings, whose size varies). */
  readonly bits: number;
  readonly isFloat: boolean;
  /** The TensorProto field that holds the values when raw_data is not used. */
  readonly field: 'float_data' | 'int32_data' | 'string_data' | 'int64_data' | 'double_data' | 'uint64_data';
  /** onnxruntime-node's name for the type, where it has one. */
  readonly ort?: string;
}

const table: DtypeInfo[] = [
  { code: DataType.FLOAT, name: 'float32', bits: 32, isFloat: true, field: 'float_data', ort: 'float32' },
  { code: DataType.UINT8, name: 'uint8', bits: 8, isFloat: false, field: 'int32_data', ort: 'uint8' },
  { code: DataType.INT8, name: 'int8', bits: 8, isFloat: false, field: 'int32_data', ort: 'int8' },
  { code: DataType.UINT16, name: 'uint16', bits: 16, isFloat: false, field: 'int32_data', ort: 'uint16' },
  { code: DataType.INT16, name: 'int16', bits: 16, isFloat: false, field: 'int32_data', ort: 'int16' },
  { code: DataType.INT32, name: 'int32', bits: 32, isFloat: false, field: 'int32_data', ort: 'int32' },
  { code: DataType.INT64, name: 'int64', bits: 64, isFloat: false, field: 'int64_data', ort: 'int64' },
  { code: DataType.STRING, name: 'string', bits: 0, isFloat: false, field: 'string_data', ort: 'string' },
  { code: DataType.BOOL, name: 'bool', bits: 8, isFloat: false, field: 'int32_data', ort: 'bool' },
  { code: DataType.FLOAT16, name: 'float16', bits: 16, isFloat: true, field: 'int32_data', ort: 'float16' },
  { code: DataType.DOUBLE, name: 'float64', bits: 64, isFloat: true, field: 'double_data', ort: 'float64' },
  { code: DataType.UINT32, name: 'uint32', bits: 32, isFloat: false, field: 'uint64_data', ort: 'uint32' },
  { code: DataType.UINT64, name: 'uint64', bits: 64, isFloat: false, field: 'uint64_data', ort: 'uint64' },
  { code: DataType.COMPLEX64, name: 'complex64', bits: 64, isFloat: false, field: 'float_data' },
  { code: DataType.COMPLEX128, name: 'complex128', bits: 128, isFloat: false, field: 'double_data' },
  { code: DataType.BFLOAT16, name: 'bfloat16', bits: 16, isFloat: true, field: 'int32_data' },
  { code: DataType.FLOAT8E4M3FN, name: 'float8e4m3fn', bits: 8, isFloat: true, field: 'int32_data' },
  { code: DataType.FLOAT8E4M3FNUZ, name: 'float8e4m3fnuz', bits: 8, isFloat: true, field: 'int32_data' },
  { code: DataType.FLOAT8E5M2, name: 'float8e5m2', bits: 8, isFloat: true, field: 'int32_data' },
  { code: DataType.FLOAT8E5M2FNUZ, name: 'float8e5m2fnuz', bits: 8, isFloat: true, field: 'int32_data' },
  { code: DataType.UINT4, name: 'uint4', bits: 4, isFloat: false, field: 'int32_data', ort: 'uint4' },
  { code: DataType.INT4, name: 'int4', bits: 4, isFloat: false, field: 'int32_data', ort: 'int4' },
  { code: DataType.FLOAT4E2M1, name: 'float4e2m1', bits: 4, isFloat: true, field: 'int32_data' },
  { code: DataType.FLOAT8E8M0, name: 'float8e8m0', bits: 8, isFloat: true, field: 'int32_data' },
  { code: DataType.UINT2, name: 'uint2', bits: 2, isFloat: false, field: 'int32_data' },
  { code: DataType.INT2, name: 'int2', bits: 2, isFloat: false, field: 'int32_data' },
  { code: DataType.FLOAT6E2M3, name: 'float6e2m3', bits: 6, isFloat: true, field: 'int32_data' },
  { code: DataType.FLOAT6E3M2, name: 'float6e3m2', bits: 6, isFloat: true, field: 'int32_data' },
];

const byCode = new Map(table.map((d) => [d.code, d]));

export function dtypeInfo(code: number | undefined): DtypeInfo | undefined {
  return code === undefined ? undefined : byCode.get(code);
}

export function dtypeName(code: number | undefined): string {
  return dtypeInfo(code)?.name ?? `dtype(${code ?? 'unset'})`;
}

/** Bytes that `count` elements take in raw_data (sub-byte types are packed, rounded up). */
export function rawByteLength(code: number | undefined, count: number): number {
  const info = dtypeInfo(code);
  if (!info || info.bits === 0) return 0;
  return Math.ceil((count * info.bits) / 8);
}
