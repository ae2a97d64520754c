// NumPy .npz archives: a zip of .npy files (stored, or deflated by savez_compressed).
// Read with node's zlib; only the central directory and local headers are parsed.
// An archive is untrusted: a few MB of deflated zeros can claim gigabytes. So every entry's sizes
// are checked (central and local headers, the .npy header's shape × dtype) against each other and
// against DATA_FILE_LIMIT for the whole archive before anything is inflated, and inflating stops at
// the declared size: memory stays within the limit whatever the archive says.
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { InputError } from '../errors.js';
import { DATA_FILE_LIMIT, bytesText, readInput } from './input-path.js';
import { npyLayout, parseNpy, type NamedArray } from './testdata.js';

const END_OF_CENTRAL_DIR = 0x06054b50;
const CENTRAL_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
const ZIP64_EXTRA = 0x0001;
/** A 32-bit size or offset of this value is in the entry's zip64 extra field instead (numpy always writes one). */
const IN_ZIP64 = 0xffffffff;
/** Flag bit 3: sizes follow the data (a data descriptor); the local header's are zero. */
const DATA_DESCRIPTOR = 0x8;

interface Entry {
  name: string;
  method: number;
  compressedSize: number;
  /** Declared uncompressed size. */
  size: number;
  local: number;
}

/** Reads the 64-bit values of a zip64 extra field, in the order the spec gives them, for the fields marked IN_ZIP64. */
function zip64Values(extra: Buffer, count: number, where: string): number[] {
  for (let p = 0; p + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(p),
      size = extra.readUInt16LE(p + 2);
    if (id === ZIP64_EXTRA) {
      if (size < count * 8 || p + 4 + size > extra.length) break;
      return Array.from({ length: count }, (_, i) => {
        const v = extra.readBigUInt64LE(p + 4 + i * 8);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InputError(`${where}: zip64 size ${v} is too large`);
        return Number(v);
      });
    }
    p += 4 + size;
  }
  throw new InputError(`${where}: damaged zip64 extra field`);
}

/** Replaces the values marked IN_ZIP64 with those of the zip64 extra field. */
function withZip64(values: number[], extra: Buffer, where: string): number[] {
  const marked = values.filter((v) => v === IN_ZIP64).length;
  if (marked === 0) return values;
  const big = zip64Values(extra, marked, where);
  let i = 0;
  return values.map((v) => (v === IN_ZIP64 ? big[i++]! : v));
}

function centralDirectory(buf: Buffer, path: string): Entry[] {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === END_OF_CENTRAL_DIR) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new InputError(`${path}: not an .npz (zip) file`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries: Entry[] = [];
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== CENTRAL_ENTRY) throw new InputError(`${path}: damaged zip directory`);
    const method = buf.readUInt16LE(p + 10);
    const nameLen = buf.readUInt16LE(p + 28),
      extraLen = buf.readUInt16LE(p + 30),
      commentLen = buf.readUInt16LE(p + 32);
    if (p + 46 + nameLen + extraLen > buf.length) throw new InputError(`${path}: damaged zip directory`);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    const extra = buf.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    // The zip64 field holds, in this order, those of uncompressed size, compressed size and offset that are marked.
    const [size, compressedSize, local] = withZip64(
      [buf.readUInt32LE(p + 24), buf.readUInt32LE(p + 20), buf.readUInt32LE(p + 42)],
      extra,
      `${path}: zip entry '${name}'`,
    );
    entries.push({ name, method, compressedSize: compressedSize!, size: size!, local: local! });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** The entry's stored bytes, after checking that its local header agrees with the central directory. */
function storedBytes(buf: Buffer, e: Entry, where: string): Buffer {
  const local = e.local;
  if (local + 30 > buf.length || buf.readUInt32LE(local) !== LOCAL_HEADER) throw new InputError(`${where}: damaged zip entry`);
  const nameLen = buf.readUInt16LE(local + 26),
    extraLen = buf.readUInt16LE(local + 28);
  const start = local + 30 + nameLen + extraLen;
  if (start > buf.length) throw new InputError(`${where}: damaged zip entry`);
  if ((buf.readUInt16LE(local + 6) & DATA_DESCRIPTOR) === 0) {
    // A local zip64 field holds both sizes, uncompressed first, when either is marked.
    const sizes = [buf.readUInt32LE(local + 22), buf.readUInt32LE(local + 18)];
    const [size, compressedSize] = sizes.includes(IN_ZIP64) ? zip64Values(buf.subarray(local + 30 + nameLen, start), 2, where) : sizes;
    if (size !== e.size || compressedSize !== e.compressedSize) {
      throw new InputError(
        `${where}: the zip's local header (${size} bytes, ${compressedSize} compressed) disagrees with its directory (${e.size}, ${e.compressedSize})`,
      );
    }
  }
  if (buf.readUInt16LE(local + 8) !== e.method)
    throw new InputError(`${where}: the zip's local header and directory disagree on the compression method`);
  if (start + e.compressedSize > buf.length) throw new InputError(`${where}: zip entry runs past the end of the file`);
  return buf.subarray(start, start + e.compressedSize);
}

function inflate(raw: Buffer, options: { maxOutputLength?: number; finishFlush?: number }, where: string): Buffer {
  try {
    return inflateRawSync(raw, options);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new InputError(`${where}: inflates to more than the ${options.maxOutputLength} bytes the zip declares`);
    }
    throw new InputError(`${where}: damaged compressed data (${(e as Error).message})`);
  }
}

/**
 * The start of an entry, enough for its .npy header. The first KiB of deflated data inflates to at
 * most about 1 MiB (deflate's ratio tops out near 1032:1), which holds any header numpy writes.
 */
function head(raw: Buffer, e: Entry, where: string): Buffer {
  if (e.method === 0) return raw.subarray(0, 1 << 16);
  return inflate(raw.subarray(0, 1024), { finishFlush: zlibConstants.Z_SYNC_FLUSH }, where);
}

/** The entry's bytes: exactly its declared size, never more in memory. */
function contents(raw: Buffer, e: Entry, where: string): Buffer {
  if (e.method === 0) {
    if (raw.length !== e.size) throw new InputError(`${where}: stored entry of ${raw.length} bytes declares ${e.size}`);
    return raw;
  }
  const data = inflate(raw, { maxOutputLength: Math.max(1, e.size) }, where);
  if (data.length !== e.size) throw new InputError(`${where}: inflates to ${data.length} bytes, the zip declares ${e.size}`);
  return data;
}

export function readNpz(path: string): NamedArray[] {
  const buf = readInput(path, { limit: DATA_FILE_LIMIT, what: 'data file' });
  const entries = centralDirectory(buf, path).filter((e) => e.name.endsWith('.npy'));
  let total = 0;
  for (const e of entries) {
    const where = `${path}:${e.name}`;
    if (e.method !== 0 && e.method !== 8) throw new InputError(`${where}: unsupported zip compression method ${e.method}`);
    total += e.size;
    if (total > DATA_FILE_LIMIT) {
      throw new InputError(
        `${where}: the archive's arrays take ${total} bytes${entries.length > 1 ? ' so far' : ''}, over the ${bytesText(DATA_FILE_LIMIT)} limit for a data file`,
      );
    }
  }
  // Every header checked before any entry is inflated: a lie anywhere costs no memory.
  const stored = entries.map((e) => {
    const where = `${path}:${e.name}`;
    const raw = storedBytes(buf, e, where);
    const layout = npyLayout(head(raw, e, where), where, true);
    if (layout && layout.start + layout.byteLength !== e.size) {
      throw new InputError(
        `${where}: shape (${layout.dims.join(', ')}) needs ${layout.start + layout.byteLength} bytes with its header, the zip declares ${e.size}`,
      );
    }
    return raw;
  });
  return entries.map((e, i) => {
    const where = `${path}:${e.name}`;
    return { ...parseNpy(contents(stored[i]!, e, where), where), name: e.name.slice(0, -4) };
  });
}
