// Field tables for the ONNX messages. protobufjs parses our onnx.proto when the package is built,
// and the build writes the result as a plain table (dist/io/onnx.proto.json) that this module turns
// into specs without protobufjs: loading protobufjs and its JSON form slowed the start of each
// command and each kernel worker, and made each bundle larger (bench/RESULTS.md, §"Figures moved
// from source comments"). (Without a build, as under the tests before `npm run build`, the .proto
// is parsed.) The wire work is done by codec.ts, because protobufjs's own decoder drops unknown
// fields and proto2 presence, and its encoder copies large byte fields several times (its peak
// memory: same section).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Protobuf from 'protobufjs';
import { packagePath } from '../paths.js';

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
    case 'float':
      return WIRE_FIXED32;
    case 'double':
      return WIRE_FIXED64;
    case 'string':
    case 'bytes':
    case 'message':
      return WIRE_LEN;
    default:
      return WIRE_VARINT;
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
    case 'float':
      return EMPTY.float;
    case 'double':
      return EMPTY.double;
    case 'int32':
    case 'enum':
      return EMPTY.int32;
    case 'int64':
      return EMPTY.int64;
    case 'uint64':
      return EMPTY.uint64;
    default:
      throw new Error(`no packed form for ${kind}`);
  }
}

function protoPath(): string {
  // The schema file stays in src/io (shipped with the package), whichever copy of the code runs.
  return packagePath('src', 'io', 'onnx.proto');
}

/** One field as the table stores it. */
export interface TableField {
  name: string;
  number: number;
  kind: FieldKind;
  repeated: boolean;
  packed: boolean;
  /** The full name of a message field's type. */
  type?: string;
}

/** Every message of onnx.proto with its fields: what the build writes and the specs are made from. */
export type SchemaTable = { name: string; fields: TableField[] }[];

const KINDS = ['int64', 'uint64', 'int32', 'enum', 'float', 'double', 'string', 'bytes', 'message'];

/** The table parsed from onnx.proto by protobufjs (loaded here alone, and only when this runs). */
function tableFromProto(): SchemaTable {
  // A require the bundler does not follow: built packages never load protobufjs.
  const protobuf = createRequire(import.meta.url)('protobufjs') as typeof Protobuf;
  const root = protobuf.parse(readFileSync(protoPath(), 'utf8'), { keepCase: true }).root;
  root.resolveAll();
  const table: SchemaTable = [];
  const collect = (ns: Protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) {
        table.push({
          name: nested.fullName.replace(/^\./, ''),
          fields: nested.fieldsArray.map((f) => {
            const message = f.resolvedType instanceof protobuf.Type ? f.resolvedType.fullName.replace(/^\./, '') : undefined;
            const kind = (message ? 'message' : f.resolvedType instanceof protobuf.Enum ? 'enum' : f.type) as FieldKind;
            if (!KINDS.includes(kind)) throw new Error(`onnx.proto: unsupported field type ${f.type}`);
            return {
              name: f.name,
              number: f.id,
              kind,
              repeated: f.repeated,
              packed: f.repeated && f.options?.packed === true,
              ...(message ? { type: message } : {}),
            };
          }),
        });
      }
      if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) collect(nested as Protobuf.NamespaceBase);
    }
  };
  collect(root);
  return table;
}

/** The schema table: the one the build wrote, else parsed from onnx.proto now. */
export function schemaTable(source: 'auto' | 'proto' = 'auto'): SchemaTable {
  const json = packagePath('dist', 'io', 'onnx.proto.json');
  return source === 'auto' && existsSync(json) ? (JSON.parse(readFileSync(json, 'utf8')) as SchemaTable) : tableFromProto();
}

/** The table as JSON, for the build to write. */
export function schemaJson(): string {
  return JSON.stringify(schemaTable('proto'));
}

function buildSpecs(): Map<string, MessageSpec> {
  const table = schemaTable();
  const specs = new Map<string, MessageSpec>();
  for (const message of table) {
    const fields: FieldSpec[] = message.fields
      .slice()
      .sort((a, b) => a.number - b.number)
      .map((f) => {
        const wireType = f.packed ? WIRE_LEN : scalarWireType(f.kind);
        return {
          name: f.name,
          number: f.number,
          kind: f.kind,
          repeated: f.repeated,
          packed: f.packed,
          wireType,
          tag: ((f.number << 3) | wireType) >>> 0,
        };
      });
    const byNumber: (FieldSpec | undefined)[] = [];
    for (const f of fields) byNumber[f.number] = f;
    const repeatedFields = fields.filter((f) => f.repeated);
    specs.set(message.name, {
      name: message.name,
      fields,
      byNumber,
      create() {
        const msg: Record<string, unknown> = {};
        for (const f of repeatedFields) msg[f.name] = f.packed ? emptyPacked(f.kind) : [];
        return msg;
      },
    });
  }
  for (const message of table) {
    const spec = specs.get(message.name)!;
    for (const f of message.fields) if (f.type) spec.byNumber[f.number]!.message = specs.get(f.type);
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
