// NumPy .npz archives: a zip of .npy files (stored, or deflated by savez_compressed).
// Read with node's zlib; only the central directory and local headers are parsed.
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { InputError } from '../errors.js';
import { parseNpy, type NamedArray } from './testdata.js';

const END_OF_CENTRAL_DIR = 0x06054b50;
const CENTRAL_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

export function readNpz(path: string): NamedArray[] {
  const buf = readFileSync(path);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === END_OF_CENTRAL_DIR) { eocd = i; break; }
  }
  if (eocd < 0) throw new InputError(`${path}: not an .npz (zip) file`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out: NamedArray[] = [];
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== CENTRAL_ENTRY) throw new InputError(`${path}: damaged zip directory`);
    const method = buf.readUInt16LE(p + 10);
    const compressedSize = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28), extraLen = buf.readUInt16LE(p + 30), commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== LOCAL_HEADER) throw new InputError(`${path}: damaged zip entry '${name}'`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (start + compressedSize > buf.length) throw new InputError(`${path}: zip entry '${name}' runs past the end`);
    const raw = buf.subarray(start, start + compressedSize);
    let data: Buffer;
    if (method === 0) data = raw;
    else if (method === 8) data = inflateRawSync(raw);
    else throw new InputError(`${path}: zip entry '${name}' uses unsupported compression method ${method}`);
    if (!name.endsWith('.npy')) continue;
    out.push({ ...parseNpy(data, `${path}:${name}`), name: name.slice(0, -4) });
  }
  return out;
}
