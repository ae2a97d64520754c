// Field tables for the ONNX messages, built once from our onnx.proto with protobufjs's parser (or
// from the JSON form of it that the build writes, which loads in ~1 ms where parsing took ~15 ms).
// protobufjs reads the schema; the wire work is done by codec.ts, because protobufjs's own
// decoder drops unknown fields and proto2 presence, and its encoder copies large byte fields
// several times (peaking near 4x the model size).
import { existsSync, readFileSync } from 'node:fs';
import { packagePath } from '../paths.js';
import protobuf from 'protobufjs';

export type ScalarKind = 'int64' | 'uint64' | 'int32' | 'enum' | 'float' | 'double' | 'string' | 'bytes';
export type FieldKind = ScalarKind | 'message';

export interface FieldSpec {
  readonly name: string;
  readonly number: number;
  readonly kind: FieldKind;
  readonly repeated: boolean;
  readonly packed: boolean;
  /** The wire type this field is written with (2 for packed and length-delimited fields). */
  readonly wireType: number;
  /** The encoded tag (number << 3 | wire type). */
  readonly tag: number;
  message?: MessageSpec;
}

export interface MessageSpec {
  readonly name: string;
  /** Fields in ascending field-number order: the order protobuf's C++ and upb serializers use. */
  readonly fields: FieldSpec[];
  /** Lookup by field number (sparse array). */
  readonly byNumber: (FieldSpec | undefined)[];
  /** Builds an empty message: every repeated field set to an empty array. */
  create(): Record<string, unknown>;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

function scalarWireType(kind: FieldKind): number {
  switch (kind) {
    case 'float': return WIRE_FIXED32;
    case 'double': return WIRE_FIXED64;
    case 'string': case 'bytes': case 'message': return WIRE_LEN;
    default: return WIRE_VARINT;
  }
}

const EMPTY = {
  float: new Float32Array(0),
  double: new Float64Array(0),
  int32: new Int32Array(0),
  int64: new BigInt64Array(0),
  uint64: new BigUint64Array(0),
};

/** The shared empty value of a packed numeric field (typed arrays of length 0 are immutable). */
export function emptyPacked(kind: FieldKind): ArrayLike<unknown> {
  switch (kind) {
    case 'float': return EMPTY.float;
    case 'double': return EMPTY.double;
    case 'int32': case 'enum': return EMPTY.int32;
    case 'int64': return EMPTY.int64;
    case 'uint64': return EMPTY.uint64;
    default: throw new Error(`no packed form for ${kind}`);
  }
}

function protoPath(): string {
  // The schema file stays in src/io (shipped with the package), whichever copy of the code runs.
  return packagePath('src', 'io', 'onnx.proto');
}

/** The parsed schema: protobufjs's JSON form when the build wrote it, else the .proto itself. */
export function schemaRoot(source: 'auto' | 'proto' = 'auto'): protobuf.Root {
  const json = packagePath('dist', 'io', 'onnx.proto.json');
  const root = source === 'auto' && existsSync(json)
    ? protobuf.Root.fromJSON(JSON.parse(readFileSync(json, 'utf8')) as protobuf.INamespace)
    : protobuf.parse(readFileSync(protoPath(), 'utf8'), { keepCase: true }).root;
  root.resolveAll();
  return root;
}

/** Writes the JSON form of onnx.proto (run by the build). */
export function schemaJson(): string {
  return JSON.stringify(schemaRoot('proto').toJSON());
}

function buildSpecs(): Map<string, MessageSpec> {
  const root = schemaRoot();
  const specs = new Map<string, MessageSpec>();
  const types: protobuf.Type[] = [];
  const collect = (ns: protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) types.push(nested);
      if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) collect(nested as protobuf.NamespaceBase);
    }
  };
  collect(root);
  for (const type of types) {
    const fields: FieldSpec[] = type.fieldsArray
      .slice()
      .sort((a, b) => a.id - b.id)
      .map((f) => {
        let kind: FieldKind;
        if (f.resolvedType instanceof protobuf.Type) kind = 'message';
        else if (f.resolvedType instanceof protobuf.Enum) kind = 'enum';
        else kind = f.type as ScalarKind;
        if (!['int64', 'uint64', 'int32', 'enum', 'float', 'double', 'string', 'bytes', 'message'].includes(kind)) {
          throw new Error(`onnx.proto: unsupported field type ${f.type}`);
        }
        const repeated = f.repeated;
        const packed = repeated && f.options?.packed === true;
        const wireType = packed ? WIRE_LEN : scalarWireType(kind);
        return { name: f.name, number: f.id, kind, repeated, packed, wireType, tag: ((f.id << 3) | wireType) >>> 0 };
      });
    const byNumber: (FieldSpec | undefined)[] = [];
    for (const f of fields) byNumber[f.number] = f;
    const repeatedFields = fields.filter((f) => f.repeated);
    const spec: MessageSpec = {
      name: type.fullName.replace(/^\./, ''),
      fields,
      byNumber,
      create() {
        const msg: Record<string, unknown> = {};
        for (const f of repeatedFields) msg[f.name] = f.packed ? emptyPacked(f.kind) : [];
        return msg;
      },
    };
    specs.set(spec.name, spec);
  }
  for (const type of types) {
    const spec = specs.get(type.fullName.replace(/^\./, ''))!;
    for (const f of type.fieldsArray) {
      if (f.resolvedType instanceof protobuf.Type) {
        const fs = spec.byNumber[f.id]!;
        fs.message = specs.get(f.resolvedType.fullName.replace(/^\./, ''));
      }
    }
  }
  return specs;
}

let cached: Map<string, MessageSpec> | undefined;

export function messageSpec(name: string): MessageSpec {
  cached ??= buildSpecs();
  const spec = cached.get(name);
  if (!spec) throw new Error(`unknown message ${name}`);
  return spec;
}

export const WireType = { VARINT: WIRE_VARINT, FIXED64: WIRE_FIXED64, LEN: WIRE_LEN, FIXED32: WIRE_FIXED32 } as const;
