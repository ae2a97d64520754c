// The main job: read a model, run the pipeline, write the result, and say what changed.
import { closeSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { readModel } from '../io/read.js';
import type { Model } from '../ir/model.js';
import { writeModel, type WriteOptions, type WrittenFile } from '../io/write.js';

export interface PassSummary {
  name: string;
}

export interface CompressOptions {
  /** Create the output's folder when it does not exist (after the input has been read). */
  createOutputFolder?: boolean;
  write?: WriteOptions;
}

export interface CompressResult {
  input: { path: string; bytes: number; files: WrittenFile[] };
  output: { path: string; bytes: number; files: WrittenFile[] };
  passes: PassSummary[];
  /** With no pass: whether the output files are byte-identical to the input files. */
  identical?: boolean;
  /** The model as read, before any pass ran (the reference for evaluation). */
  reference: Model;
}

function sameBytes(a: string, b: string): boolean {
  if (statSync(a).size !== statSync(b).size) return false;
  const fa = openSync(a, 'r'), fb = openSync(b, 'r');
  const ba = Buffer.allocUnsafe(1 << 20), bb = Buffer.allocUnsafe(1 << 20);
  try {
    for (let pos = 0; ; pos += ba.length) {
      const na = readSync(fa, ba, 0, ba.length, pos);
      const nb = readSync(fb, bb, 0, bb.length, pos);
      if (na !== nb || ba.compare(bb, 0, nb, 0, na) !== 0) return false;
      if (na === 0) return true;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

export function compress(inputPath: string, outputPath: string, options: CompressOptions = {}): CompressResult {
  const model = readModel(inputPath);
  const inputFiles = model.sourceFiles().map((path) => ({ path: path === model.source!.path ? inputPath : path, bytes: statSync(path).size }));
  if (options.createOutputFolder) mkdirSync(dirname(outputPath), { recursive: true });
  const written = writeModel(model, outputPath, options.write);
  const outputFiles = [written.model, ...(written.externalData ? [written.externalData] : [])];
  const total = (files: WrittenFile[]) => files.reduce((n, f) => n + f.bytes, 0);
  const identical = inputFiles.length === 1 && outputFiles.length === 1 ? sameBytes(inputFiles[0]!.path, outputFiles[0]!.path) : undefined;
  return {
    input: { path: inputPath, bytes: total(inputFiles), files: inputFiles },
    output: { path: written.model.path, bytes: total(outputFiles), files: outputFiles },
    passes: [],
    identical,
    reference: model,
  };
}
