// A schema-driven protobuf codec for ONNX messages.
// Decoding keeps byte fields as views into the input (no copy), records which optional fields
// were present, and keeps unknown fields as raw bytes. Encoding writes fields in field-number
// order with unknown fields last (as protobuf's C++ and upb serializers do), so a file written by
// the onnx Python library comes back byte-identical. Message sizes are computed first, then bytes
// are streamed to a sink; large byte fields go to the sink as they are, never copied.
import type { ChunkOrigin, ChunkSink } from '../ir/file-range.js';
import { messageSpec, emptyPacked, WireType, type FieldSpec, type MessageSpec } from './schema.js';

export class DecodeError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`);
    this.name = 'DecodeError';
  }
}

/** Where a streamed chunk's bytes were read from (a FileRange's, ir/file-range.ts). */
export type { ChunkOrigin };

/** Receives the encoded bytes in order; `origin` says where a chunk copied from a file was read. */
export type Sink = ChunkSink;

/** Bytes that are written by streaming (for example a tensor read from an external file in pieces). */
export interface StreamedBytes {
  readonly byteLength: number;
  /** Where the bytes lie, when they are one range of a file (a writer may then copy them in the kernel). */
  readonly origin?: ChunkOrigin;
  writeTo(write: Sink): void;
}

export const MAX_NESTING = 100;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('onnxpress needs a little-endian machine');
}

// ---------------------------------------------------------------- decoding

// The last varint read, as two unsigned 32-bit halves (module state keeps the hot path allocation-free).
let lo = 0;
let hi = 0;

function readVarint(buf: Uint8Array, pos: number, end: number): number {
  let b: number;
  lo = 0;
  hi = 0;
  let shift = 0;
  for (let i = 0; i < 4; i++) {
    if (pos >= end) throw new DecodeError('truncated varint', pos);
    b = buf[pos++]!;
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      lo >>>= 0;
      return pos;
    }
    shift += 7;
  }
  if (pos >= end) throw new DecodeError('truncated varint', pos);
  b = buf[pos++]!;
  lo = (lo | ((b & 0x7f) << 28)) >>> 0;
  hi = (b & 0x7f) >> 4;
  if (b < 0x80) return pos;
  shift = 3;
  for (let i = 0; i < 5; i++) {
    if (pos >= end) throw new DecodeError('truncated varint', pos);
    b = buf[pos++]!;
    hi |= (b & 0x7f) << shift;
    if (b < 0x80) {
      hi >>>= 0;
      return pos;
    }
    shift += 7;
  }
  throw new DecodeError('varint longer than 10 bytes', pos);
}

function int64Value(): number | bigint {
  if (hi === 0) return lo;
  if (hi < 0x200000) return hi * 4294967296 + lo;
  if (hi >= 0xffe00000) {
    const v = (hi - 4294967296) * 4294967296 + lo;
    if (Number.isSafeInteger(v)) return v;
  }
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

function uint64Value(): number | bigint {
  if (hi < 0x200000) return hi * 4294967296 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function readLength(buf: Uint8Array, pos: number, end: number): number {
  const start = pos;
  pos = readVarint(buf, pos, end);
  if (hi !== 0 || lo > end - pos) throw new DecodeError('length runs past the end of its message', start);
  return pos;
}

function skipField(buf: Uint8Array, pos: number, end: number, wireType: number, at: number): number {
  switch (wireType) {
    case WireType.VARINT:
      return readVarint(buf, pos, end);
    case WireType.FIXED64:
      if (end - pos < 8) throw new DecodeError('truncated fixed64', at);
      return pos + 8;
    case WireType.FIXED32:
      if (end - pos < 4) throw new DecodeError('truncated fixed32', at);
      return pos + 4;
    case WireType.LEN:
      pos = readLength(buf, pos, end);
      return pos + lo;
    default:
      throw new DecodeError(`unsupported wire type ${wireType}`, at);
  }
}

function scalarWireType(f: FieldSpec): number {
  switch (f.kind) {
    case 'float':
      return WireType.FIXED32;
    case 'double':
      return WireType.FIXED64;
    case 'string':
    case 'bytes':
    case 'message':
      return WireType.LEN;
    default:
      return WireType.VARINT;
  }
}

function readScalar(f: FieldSpec, buf: Buffer, pos: number, end: number): [unknown, number] {
  switch (f.kind) {
    case 'float':
      return [buf.readFloatLE(pos), pos + 4];
    case 'double':
      return [buf.readDoubleLE(pos), pos + 8];
    case 'int32':
    case 'enum':
      pos = readVarint(buf, pos, end);
      return [lo | 0, pos];
    case 'int64':
      pos = readVarint(buf, pos, end);
      return [int64Value(), pos];
    case 'uint64':
      pos = readVarint(buf, pos, end);
      return [uint64Value(), pos];
    default:
      throw new Error(`not a numeric field: ${f.kind}`);
  }
}

function countVarints(buf: Uint8Array, pos: number, end: number): number {
  let n = 0;
  for (let i = pos; i < end; i++) if (buf[i]! < 0x80) n++;
  return n;
}

/** A packed numeric payload as the typed array the field holds: a view when alignment allows, else one copy. */
function readPackedTyped(f: FieldSpec, buf: Buffer, pos: number, end: number): ArrayLike<unknown> {
  const len = end - pos;
  const fixedWidth = f.kind === 'float' ? 4 : f.kind === 'double' ? 8 : 0;
  if (fixedWidth) {
    if (len % fixedWidth !== 0) throw new DecodeError(`packed ${f.name} length is not a multiple of ${fixedWidth}`, pos);
    const Ctor = fixedWidth === 4 ? Float32Array : Float64Array;
    const offset = buf.byteOffset + pos;
    if (offset % fixedWidth === 0) return new Ctor(buf.buffer as ArrayBuffer, offset, len / fixedWidth);
    const copy = new Ctor(len / fixedWidth);
    new Uint8Array(copy.buffer).set(buf.subarray(pos, end));
    return copy;
  }
  const n = countVarints(buf, pos, end);
  if (f.kind === 'int32' || f.kind === 'enum') {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      pos = readVarint(buf, pos, end);
      out[i] = lo | 0;
    }
    if (pos !== end) throw new DecodeError(`malformed packed ${f.name}`, pos);
    return out;
  }
  const out = f.kind === 'int64' ? new BigInt64Array(n) : new BigUint64Array(n);
  const halves = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    pos = readVarint(buf, pos, end);
    halves[2 * i] = lo;
    halves[2 * i + 1] = hi;
  }
  if (pos !== end) throw new DecodeError(`malformed packed ${f.name}`, pos);
  return out;
}

function concatTyped(a: ArrayLike<unknown>, b: ArrayLike<unknown>): ArrayLike<unknown> {
  if (a.length === 0) return b;
  const A = a as unknown as Float32Array;
  const out = new (A.constructor as Float32ArrayConstructor)(a.length + b.length);
  out.set(A);
  out.set(b as unknown as Float32Array, a.length);
  return out;
}

function typedFrom(f: FieldSpec, values: unknown[]): ArrayLike<unknown> {
  switch (f.kind) {
    case 'float':
      return Float32Array.from(values as number[]);
    case 'double':
      return Float64Array.from(values as number[]);
    case 'int32':
    case 'enum':
      return Int32Array.from(values as number[]);
    case 'int64':
      return BigInt64Array.from(values as (number | bigint)[], (v) => BigInt(v));
    default:
      return BigUint64Array.from(values as (number | bigint)[], (v) => BigInt(v));
  }
}

function decodeMessage(spec: MessageSpec, buf: Buffer, start: number, end: number, depth: number): Record<string, unknown> {
  if (depth > MAX_NESTING) throw new DecodeError(`messages nested deeper than ${MAX_NESTING} levels`, start);
  const msg = spec.create();
  // Elements of packed fields that arrived unpacked, converted once at the end.
  let pending: Map<FieldSpec, unknown[]> | undefined;
  let pos = start;
  while (pos < end) {
    const at = pos;
    let tag = buf[pos]!;
    if (tag < 0x80) pos++;
    else {
      pos = readVarint(buf, pos, end);
      if (hi !== 0) throw new DecodeError('malformed field tag', at);
      tag = lo;
    }
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (number === 0) throw new DecodeError('field number 0', at);
    const f = spec.byNumber[number];
    const expected = f === undefined ? -1 : scalarWireType(f);
    if (
      f === undefined ||
      (wireType !== expected &&
        !(f.repeated && wireType === WireType.LEN && f.kind !== 'string' && f.kind !== 'bytes' && f.kind !== 'message'))
    ) {
      pos = skipField(buf, pos, end, wireType, at);
      ((msg.$unknown ??= []) as Uint8Array[]).push(buf.subarray(at, pos));
      continue;
    }
    if (wireType === WireType.LEN) {
      pos = readLength(buf, pos, end);
      const stop = pos + lo;
      let value: unknown;
      switch (f.kind) {
        case 'message':
          value = decodeMessage(f.message!, buf, pos, stop, depth + 1);
          break;
        case 'string':
          value = buf.toString('utf8', pos, stop);
          break;
        case 'bytes':
          value = buf.subarray(pos, stop);
          break;
        default: {
          // A packed run of numbers.
          if (f.packed) msg[f.name] = concatTyped(msg[f.name] as ArrayLike<unknown>, readPackedTyped(f, buf, pos, stop));
          else {
            const list = msg[f.name] as unknown[];
            let p = pos;
            while (p < stop) {
              const [v, next] = readScalar(f, buf, p, stop);
              list.push(v);
              p = next;
            }
          }
          pos = stop;
          continue;
        }
      }
      pos = stop;
      if (f.repeated) (msg[f.name] as unknown[]).push(value);
      else msg[f.name] = value;
      continue;
    }
    if ((wireType === WireType.FIXED32 && end - pos < 4) || (wireType === WireType.FIXED64 && end - pos < 8)) {
      throw new DecodeError(`truncated ${f.name}`, at);
    }
    const [value, next] = readScalar(f, buf, pos, end);
    pos = next;
    if (!f.repeated) msg[f.name] = value;
    else if (!f.packed) (msg[f.name] as unknown[]).push(value);
    else {
      pending ??= new Map();
      let list = pending.get(f);
      if (!list) pending.set(f, (list = []));
      list.push(value);
    }
  }
  if (pos !== end) throw new DecodeError('message runs past its end', pos);
  if (pending) {
    for (const [f, values] of pending) msg[f.name] = concatTyped(msg[f.name] as ArrayLike<unknown>, typedFrom(f, values));
  }
  return msg;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes one message of the named type (e.g. 'onnx.ModelProto'). Byte fields are views into `bytes`. */
export function decode<T>(typeName: string, bytes: Uint8Array): T {
  const buf = asBuffer(bytes);
  return decodeMessage(messageSpec(typeName), buf, 0, buf.length, 0) as T;
}

// ---------------------------------------------------------------- encoding

function splitInt64(v: number | bigint): void {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`not an integer: ${v}`);
    if (v >= 0) {
      lo = v >>> 0;
      hi = Math.floor(v / 4294967296) >>> 0;
    } else {
      const a = -v;
      let l = a >>> 0;
      let h = Math.floor(a / 4294967296) >>> 0;
      l = (~l + 1) >>> 0;
      h = (~h + (l === 0 ? 1 : 0)) >>> 0;
      lo = l;
      hi = h;
    }
    return;
  }
  const u = BigInt.asUintN(64, v);
  lo = Number(u & 0xffffffffn);
  hi = Number(u >> 32n);
}

function varintSize(): number {
  if (hi === 0) return lo < 0x80 ? 1 : lo < 0x4000 ? 2 : lo < 0x200000 ? 3 : lo < 0x10000000 ? 4 : 5;
  return hi < 0x8 ? 5 : hi < 0x400 ? 6 : hi < 0x20000 ? 7 : hi < 0x1000000 ? 8 : hi < 0x80000000 ? 9 : 10;
}

function splitScalar(f: FieldSpec, v: unknown): void {
  if (f.kind === 'int32' || f.kind === 'enum') {
    const n = v as number;
    lo = n >>> 0;
    hi = n < 0 ? 0xffffffff : 0;
  } else splitInt64(v as number | bigint);
}

const CHUNK = 1 << 20;
const DIRECT = 1 << 16;

/** Accumulates small writes in a chunk and hands large byte fields to the sink without copying. */
class Out {
  private buf = Buffer.allocUnsafe(CHUNK);
  private pos = 0;
  total = 0;
  constructor(
    private readonly sink: Sink,
    private readonly placed?: Placed,
  ) {}

  flush(): void {
    if (this.pos > 0) {
      this.sink(this.buf.subarray(0, this.pos));
      this.total += this.pos;
      this.pos = 0;
    }
  }
  private room(n: number): void {
    if (this.pos + n > CHUNK) this.flush();
  }
  varint(): void {
    this.room(10);
    const b = this.buf;
    let l = lo,
      h = hi;
    while (h !== 0 || l >= 0x80) {
      b[this.pos++] = (l & 0x7f) | 0x80;
      l = ((l >>> 7) | (h << 25)) >>> 0;
      h >>>= 7;
    }
    b[this.pos++] = l;
  }
  uint(n: number): void {
    splitInt64(n);
    this.varint();
  }
  float(v: number): void {
    this.room(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }
  double(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  bytes(view: Uint8Array): void {
    if (view.length >= DIRECT) {
      this.flush();
      this.sink(view);
      this.total += view.length;
      return;
    }
    this.room(view.length);
    this.buf.set(view, this.pos);
    this.pos += view.length;
  }
  streamed(s: StreamedBytes): void {
    this.flush();
    if (this.placed?.(s, this.total)) {
      this.total += s.byteLength;
      return;
    }
    s.writeTo((chunk, origin) => {
      this.sink(chunk, origin);
      this.total += chunk.length;
    });
  }
  string(s: string, byteLength: number): void {
    if (byteLength <= CHUNK) {
      this.room(byteLength);
      this.buf.write(s, this.pos, 'utf8');
      this.pos += byteLength;
    } else this.bytes(Buffer.from(s, 'utf8'));
  }
}

/** Says whether the caller has put a streamed field's bytes at `offset` of the output itself. */
export type Placed = (bytes: StreamedBytes, offset: number) => boolean;

export interface EncodeOptions {
  /** Messages to write in place of others (the writer uses this to point tensors at external data without touching the model). */
  substitute?: Map<object, object>;
  /**
   * Asked for each streamed field with the output offset where its bytes go: when it answers true,
   * the encoder counts the bytes as written and never reads them (nor hands them to the sink).
   */
  placed?: Placed;
}

class Encoder {
  private readonly sizes = new Map<object, number>();
  constructor(private readonly substitute: Map<object, object> | undefined) {}

  private resolve(msg: object): Record<string, unknown> {
    return (this.substitute?.get(msg) ?? msg) as Record<string, unknown>;
  }

  private packedPayloadSize(f: FieldSpec, values: ArrayLike<unknown>): number {
    if (f.kind === 'float') return 4 * values.length;
    if (f.kind === 'double') return 8 * values.length;
    let n = 0;
    for (let i = 0; i < values.length; i++) {
      splitScalar(f, values[i]);
      n += varintSize();
    }
    return n;
  }

  private valueSize(f: FieldSpec, v: unknown): number {
    switch (f.kind) {
      case 'message': {
        const s = this.size(f.message!, v as object);
        splitInt64(s);
        return varintSize() + s;
      }
      case 'string': {
        const s = Buffer.byteLength(v as string, 'utf8');
        splitInt64(s);
        return varintSize() + s;
      }
      case 'bytes': {
        const s = (v as Uint8Array | StreamedBytes).byteLength;
        splitInt64(s);
        return varintSize() + s;
      }
      case 'float':
        return 4;
      case 'double':
        return 8;
      default:
        splitScalar(f, v);
        return varintSize();
    }
  }

  size(spec: MessageSpec, original: object): number {
    const cached = this.sizes.get(original);
    if (cached !== undefined) return cached;
    const msg = this.resolve(original);
    let n = 0;
    for (const f of spec.fields) {
      const v = msg[f.name];
      if (v === undefined) continue;
      splitInt64(f.tag);
      const tagSize = varintSize();
      if (!f.repeated) {
        n += tagSize + this.valueSize(f, v);
        continue;
      }
      const list = v as ArrayLike<unknown>;
      if (list.length === 0) continue;
      if (f.packed) {
        const payload = this.packedPayloadSize(f, list);
        splitInt64(payload);
        n += tagSize + varintSize() + payload;
      } else {
        for (let i = 0; i < list.length; i++) n += tagSize + this.valueSize(f, list[i]);
      }
    }
    const unknown = msg.$unknown as Uint8Array[] | undefined;
    if (unknown) for (const u of unknown) n += u.length;
    this.sizes.set(original, n);
    return n;
  }

  private writeValue(f: FieldSpec, v: unknown, out: Out): void {
    switch (f.kind) {
      case 'message':
        out.uint(this.size(f.message!, v as object));
        this.write(f.message!, v as object, out);
        return;
      case 'string': {
        const s = v as string;
        const n = Buffer.byteLength(s, 'utf8');
        out.uint(n);
        out.string(s, n);
        return;
      }
      case 'bytes': {
        const b = v as Uint8Array | StreamedBytes;
        out.uint(b.byteLength);
        if (b instanceof Uint8Array) out.bytes(b);
        else out.streamed(b);
        return;
      }
      case 'float':
        out.float(v as number);
        return;
      case 'double':
        out.double(v as number);
        return;
      default:
        splitScalar(f, v);
        out.varint();
    }
  }

  private writePacked(f: FieldSpec, values: ArrayLike<unknown>, out: Out): void {
    if ((f.kind === 'float' && values instanceof Float32Array) || (f.kind === 'double' && values instanceof Float64Array)) {
      out.bytes(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      return;
    }
    for (let i = 0; i < values.length; i++) {
      if (f.kind === 'float') out.float(values[i] as number);
      else if (f.kind === 'double') out.double(values[i] as number);
      else {
        splitScalar(f, values[i]);
        out.varint();
      }
    }
  }

  write(spec: MessageSpec, original: object, out: Out): void {
    const msg = this.resolve(original);
    for (const f of spec.fields) {
      const v = msg[f.name];
      if (v === undefined) continue;
      if (!f.repeated) {
        splitInt64(f.tag);
        out.varint();
        this.writeValue(f, v, out);
        continue;
      }
      const list = v as ArrayLike<unknown>;
      if (list.length === 0) continue;
      if (f.packed) {
        splitInt64(f.tag);
        out.varint();
        out.uint(this.packedPayloadSize(f, list));
        this.writePacked(f, list, out);
      } else {
        for (let i = 0; i < list.length; i++) {
          splitInt64(f.tag);
          out.varint();
          this.writeValue(f, list[i], out);
        }
      }
    }
    const unknown = msg.$unknown as Uint8Array[] | undefined;
    if (unknown) for (const u of unknown) out.bytes(u);
  }
}

/**
 * Encodes a message, handing its bytes to `sink` in order. The sink must consume each chunk before
 * returning (chunks are reused). Returns the number of bytes written.
 */
export function encodeTo(typeName: string, msg: object, sink: Sink, options: EncodeOptions = {}): number {
  const spec = messageSpec(typeName);
  const encoder = new Encoder(options.substitute);
  const expected = encoder.size(spec, msg);
  const out = new Out(sink, options.placed);
  encoder.write(spec, msg, out);
  out.flush();
  if (out.total !== expected) throw new Error(`encoder wrote ${out.total} bytes, expected ${expected}`);
  return out.total;
}

/** Encodes a message into one buffer (for small messages and tests; files are written by io/write). */
export function encode(typeName: string, msg: object, options: EncodeOptions = {}): Uint8Array {
  const parts: Buffer[] = [];
  encodeTo(typeName, msg, (chunk) => parts.push(Buffer.from(chunk)), options);
  return Buffer.concat(parts);
}

/** The encoded size of a message in bytes, without writing it. */
export function encodedSize(typeName: string, msg: object, options: EncodeOptions = {}): number {
  return new Encoder(options.substitute).size(messageSpec(typeName), msg);
}

export { emptyPacked };
