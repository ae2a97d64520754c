// ONNX TensorProto files (input_K.pb in a test_data_set_N folder), the form `--data` reads: only the
// fields written here (dims, data_type, name, raw_data), enough for float32 and int64 tensors.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FLOAT = 1;
const INT64 = 7;

function varint(value) {
  const bytes = [];
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return bytes;
}

/** Encodes { name, dims, data } (Float32Array or BigInt64Array) as a TensorProto. */
export function encodeTensor({ name, dims, data }) {
  const type = data instanceof BigInt64Array ? INT64 : FLOAT;
  if (!(data instanceof Float32Array) && type !== INT64) throw new Error(`${name}: only float32 and int64 are written`);
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const nameBytes = new TextEncoder().encode(name);
  const head = [
    ...dims.flatMap((d) => [0x08, ...varint(d)]),
    0x10,
    type,
    0x42,
    ...varint(nameBytes.length),
    ...nameBytes,
    0x4a,
    ...varint(raw.length),
  ];
  const out = new Uint8Array(head.length + raw.length);
  out.set(head);
  out.set(raw, head.length);
  return out;
}

/** Decodes what encodeTensor wrote. */
export function decodeTensor(bytes) {
  let at = 0;
  const readVarint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[at++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  const dims = [];
  let type = FLOAT;
  let name = '';
  let raw = new Uint8Array(0);
  while (at < bytes.length) {
    const key = Number(readVarint());
    const field = key >> 3;
    if (field === 1) dims.push(Number(readVarint()));
    else if (field === 2) type = Number(readVarint());
    else if (field === 8 || field === 9) {
      const length = Number(readVarint());
      // A copy (Buffer's slice is a view of a shared pool), so that typed arrays can be laid over it.
      const slice = Uint8Array.prototype.slice.call(bytes, at, at + length);
      at += length;
      if (field === 8) name = new TextDecoder().decode(slice);
      else raw = slice;
    } else throw new Error(`unexpected TensorProto field ${field}`);
  }
  const data = type === INT64 ? new BigInt64Array(raw.buffer) : new Float32Array(raw.buffer);
  return { name, dims, data };
}

/** Writes test_data_set_N folders under `dir`, one per batch (a batch: a list of { name, dims, data }). */
export function writeTestDataSets(dir, batches) {
  batches.forEach((inputs, n) => {
    const set = join(dir, `test_data_set_${n}`);
    mkdirSync(set, { recursive: true });
    inputs.forEach((input, k) => {
      writeFileSync(join(set, `input_${k}.pb`), encodeTensor(input));
    });
  });
}

/** Reads them back: a list of batches, each a map from input name to { dims, data }. */
export function readTestDataSets(dir) {
  const sets = readdirSync(dir)
    .filter((f) => /^test_data_set_\d+$/.test(f))
    .sort((a, b) => Number(a.split('_').pop()) - Number(b.split('_').pop()));
  return sets.map((set) => {
    const files = readdirSync(join(dir, set))
      .filter((f) => /^input_\d+\.pb$/.test(f))
      .sort();
    return Object.fromEntries(
      files.map((f) => {
        const t = decodeTensor(readFileSync(join(dir, set, f)));
        return [t.name, t];
      }),
    );
  });
}
