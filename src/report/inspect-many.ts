// inspect A.onnx B.onnx …: besides each file's own report, the initializers repeated ACROSS the files
// (by their bytes, whatever their names, dtypes or shapes: what compress --share dedup stores once
// for several models), and the 2-D ones stored transposed in another file.
import { createHash } from 'node:crypto';
import type { Model } from '../ir/model.js';
import { dtypeInfo } from '../ir/dtype.js';
import { forEachGraph } from '../ir/walk.js';
import { tensorByteLength, tensorBytes, toNumber } from '../ir/tensor.js';
import { fileRangeOf } from '../ir/data.js';
import type { TensorProto } from '../ir/onnx.js';
import { formatBytes } from './format.js';
import { printable } from './printable.js';

export interface AcrossFiles {
  files: string[];
  /** Initializers of a file whose bytes an earlier file already holds (each distinct value counted once per file). */
  tensors: number;
  bytes: number;
  /** Distinct values held by two or more files. */
  groups: number;
  /** 2-D initializers whose transpose an earlier file holds (and no exact copy). */
  transposed: { tensors: number; bytes: number };
  /** Per file after the first: what it repeats of the earlier ones. */
  perFile: { file: string; tensors: number; bytes: number; transposed: number; transposedBytes: number }[];
}

function digestOf(t: TensorProto): string {
  const h = createHash('sha256');
  const range = fileRangeOf(t);
  if (range) range.writeTo((c) => h.update(c));
  else h.update(tensorBytes(t));
  return h.digest('hex');
}

function transposedDigest(t: TensorProto, size: number): string {
  const bytes = tensorBytes(t);
  const [rows, cols] = t.dims.map(toNumber) as [number, number];
  const out = new Uint8Array(bytes.byteLength);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const from = (r * cols + c) * size,
        to = (c * rows + r) * size;
      for (let b = 0; b < size; b++) out[to + b] = bytes[from + b]!;
    }
  }
  return createHash('sha256').update(out).digest('hex');
}

/** What the files hold in common: each file's initializers against those of the files before it. */
export function inspectAcross(models: { path: string; model: Model }[]): AcrossFiles {
  const seen = new Map<string, Set<number>>(); // `${length}|${sha256}` → files holding it
  const result: AcrossFiles = {
    files: models.map((m) => m.path),
    tensors: 0,
    bytes: 0,
    groups: 0,
    transposed: { tensors: 0, bytes: 0 },
    perFile: [],
  };
  for (const [index, { path, model }] of models.entries()) {
    const mine = new Map<string, number>();
    const flippedOnly = new Map<string, number>();
    forEachGraph(model.proto, ({ graph }) => {
      for (const t of graph.initializer) {
        const info = dtypeInfo(t.data_type);
        const bytes = tensorByteLength(t);
        if (!info || info.bits === 0 || bytes === 0) continue;
        const key = `${bytes}|${digestOf(t)}`;
        if (mine.has(key)) continue;
        mine.set(key, bytes);
        if (index === 0 || seen.has(key) || t.dims.length !== 2 || info.bits % 8 !== 0) continue;
        const flipped = `${bytes}|${transposedDigest(t, info.bits / 8)}`;
        if (seen.has(flipped)) flippedOnly.set(key, bytes);
      }
    });
    const row = { file: path, tensors: 0, bytes: 0, transposed: 0, transposedBytes: 0 };
    for (const [key, bytes] of mine) {
      const holders = seen.get(key);
      if (holders) {
        row.tensors++;
        row.bytes += bytes;
        if (holders.size === 1) result.groups++;
        holders.add(index);
      } else if (flippedOnly.has(key)) {
        row.transposed++;
        row.transposedBytes += bytes;
      }
    }
    for (const key of mine.keys()) if (!seen.has(key)) seen.set(key, new Set([index]));
    if (index > 0) result.perFile.push(row);
    result.tensors += row.tensors;
    result.bytes += row.bytes;
    result.transposed.tensors += row.transposed;
    result.transposed.bytes += row.transposedBytes;
  }
  return result;
}

export function renderAcross(unsafe: AcrossFiles): string {
  const r = printable(unsafe);
  const lines = [
    `across the ${r.files.length} files: ${r.tensors} ${r.tensors === 1 ? 'initializer repeats' : 'initializers repeat'} another file's bytes (${formatBytes(r.bytes)} in ${r.groups} groups); ${r.transposed.tensors} more ${r.transposed.tensors === 1 ? 'is' : 'are'} another file's stored transposed (${formatBytes(r.transposed.bytes)})`,
  ];
  for (const f of r.perFile)
    lines.push(
      `  ${f.file}: ${f.tensors} repeated (${formatBytes(f.bytes)}), ${f.transposed} transposed (${formatBytes(f.transposedBytes)})`,
    );
  lines.push(`  (compress ${r.files.join(' ')} -o DIR --share dedup stores each once)`);
  return lines.join('\n');
}
