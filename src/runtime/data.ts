// Evaluation data: the inputs both models are run on, and the labels metrics compare against.
// From ONNX test_data_set_N folders, .npz/.npy files, or synthesized from the model's input types
// with a seeded generator (the same seed gives the same inputs).
import { existsSync, lstatSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { readInputText } from '../io/input-path.js';
import { readNpz } from '../io/npz.js';
import {
  dataFolder,
  findInDataFolder,
  findTestDataSets,
  readTensorFile,
  readTestDataSet,
  type ArrayData,
  type DataFolder,
  type NamedArray,
} from '../io/testdata.js';
import { DataType, type ValueInfoProto } from '../ir/onnx.js';
import { GraphIndex } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { dtypeName } from '../ir/dtype.js';
import { numElements, toNumber } from '../ir/tensor.js';
import { seededRandom } from '../kernels/random.js';
import { checkShapeOptions, checkSynthesizedSize, describeShapes, dimValue, synthesizedShapes } from './synthesized.js';
import { splitData, type DataPart, type PartDescription } from './split.js';
import { floatToHalf } from '../ir/half.js';

export interface EvalBatch {
  inputs: NamedArray[];
  /** Stored expected outputs, when the data came with them. */
  expected: NamedArray[];
  /** Labels found next to this batch's inputs. */
  labels?: ArrayLike<number>;
  /** Where it came from (a folder or file), for the report. */
  source: string;
}

export interface EvalData {
  kind: 'test-data-sets' | 'npz' | 'npy' | 'synthesized';
  /** The path given, or a description of the synthesized inputs. */
  source: string;
  batches: EvalBatch[];
  /** Samples: the first dimension of the first input, summed over batches. */
  samples: number;
  /**
   * Labels given with --labels, flat, in batch order; `perLine` is the count on each line of a text
   * file with several on a line (one sample's token sequence a line), checked sample by sample.
   */
  labels?: { source: string; values: Int32Array; perLine?: number[] };
  /** For synthesized data: its seed, and what synthesizing assumed (dimension values, shapes), for the description. */
  synthesized?: { seed: number; assumed: string[] };
  /** Set when this is one part of the data (`auto`: tuning or held-out), with the range of each part. */
  part?: PartDescription;
}

export interface DataOptions {
  data?: string;
  labels?: string;
  seed?: number;
  /** Values for symbolic dimensions of synthesized inputs (default 1). */
  dims?: Record<string, number>;
  /** Whole shapes of synthesized inputs, by input name (--shape), for dimensions the model leaves unnamed. */
  shapes?: Record<string, number[]>;
  /** Batches to synthesize (default 4). */
  batches?: number;
  /** One of two disjoint parts of the data (./split.ts): `auto` tunes on one and reports on the other. */
  part?: DataPart;
}

function realInputs(model: Model): ValueInfoProto[] {
  return new GraphIndex(model.graph).realInputs();
}

/** Names inputs by the model's input names when the files do not carry them. */
function nameInputs(model: Model, arrays: NamedArray[], where: string): NamedArray[] {
  const inputs = realInputs(model);
  const names = new Set(inputs.map((i) => i.name));
  if (arrays.every((a) => names.has(a.name))) return arrays;
  if (arrays.length !== inputs.length) {
    throw new InputError(
      `${where}: ${arrays.length} input files for a model with ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')})`,
    );
  }
  return arrays.map((a, i) => ({ ...a, name: inputs[i]!.name ?? '' }));
}

/** Reads labels; `file` is what is opened when not `path` (a resolved path inside a data folder). */
export function readLabels(path: string, file = path): Int32Array {
  return readLabelFile(path, file).values;
}

/**
 * Reads labels, flat. A text file has whitespace-separated integers, one sample a line; where some
 * line has several (a token sequence, for perplexity), `perLine` gives each line's count, so that
 * each can be checked against its sample's positions. One integer a line stays a flat list.
 */
export function readLabelFile(path: string, file = path): { values: Int32Array; perLine?: number[] } {
  if (path.endsWith('.npy') || path.endsWith('.pb')) {
    const a = readTensorFile(path, file);
    if (Array.isArray(a.data) || a.dtype === DataType.FLOAT || a.dtype === DataType.DOUBLE) {
      throw new InputError(`${path}: labels must be integers, found ${dtypeName(a.dtype)}`);
    }
    return { values: Int32Array.from(a.data as ArrayLike<number | bigint>, (v) => Number(v)) };
  }
  const values: number[] = [],
    perLine: number[] = [];
  readInputText(path, { file, what: 'labels file' })
    .split(/\r?\n/)
    .forEach((line, i) => {
      const words = line
        .trim()
        .split(/\s+/)
        .filter((w) => w !== '');
      if (words.length === 0) return;
      for (const w of words) {
        // Beyond 2^31 an Int32Array would wrap the value silently.
        if (!/^-?\d+$/.test(w) || Math.abs(Number(w)) > 2 ** 31 - 1)
          throw new InputError(`${path}:${i + 1}: '${w.slice(0, 40)}' is not an integer label`);
        values.push(Number(w));
      }
      perLine.push(words.length);
    });
  return { values: Int32Array.from(values), ...(perLine.some((n) => n > 1) ? { perLine } : {}) };
}

/** Whether a name is taken in a folder: a link to nothing counts (and is then refused), unlike existsSync. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Labels found beside a test_data_set_N's inputs: like them, they must resolve inside the data folder. */
function labelsBeside(setDir: string, folder: DataFolder): ArrayLike<number> | undefined {
  for (const f of ['labels.pb', 'labels_0.pb', 'labels.npy', 'labels_0.npy']) {
    const p = join(setDir, f);
    if (present(p)) return readLabels(p, findInDataFolder(p, folder).file);
  }
  return undefined;
}

/** For an integer input that indexes an embedding table (Gather), the table's row count. */
function indexRange(model: Model, input: string): number | undefined {
  const index = new GraphIndex(model.graph);
  for (const consumer of index.consumersOf(input)) {
    if (consumer.op_type === 'Gather' && consumer.input[1] === input) {
      const table = index.initializers.get(consumer.input[0] ?? '');
      if (table && table.dims.length > 0) return toNumber(table.dims[0]!);
    }
  }
  return undefined;
}

function synthesize(model: Model, options: DataOptions): EvalData {
  const random = seededRandom(options.seed ?? 0);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const batches: EvalBatch[] = [];
  const count = options.batches ?? 4;
  // The same shapes for every batch: the model's, with --dim and --shape applied.
  const shapes = synthesizedShapes(model, options);
  for (let b = 0; b < count; b++) {
    const inputs: NamedArray[] = shapes.map(({ input: info, dims }) => {
      const tensor = info.type?.tensor_type;
      if (!tensor) throw new UsageError(`input '${info.name}' is not a tensor: give evaluation data with --data`);
      const n = numElements(dims);
      const type = tensor.elem_type;
      let data: ArrayData;
      switch (type) {
        case DataType.FLOAT:
          data = Float32Array.from({ length: n }, normal);
          break;
        case DataType.DOUBLE:
          data = Float64Array.from({ length: n }, normal);
          break;
        case DataType.FLOAT16:
          data = Uint16Array.from({ length: n }, () => floatToHalf(normal()));
          break;
        case DataType.INT64:
        case DataType.INT32: {
          const range = indexRange(model, info.name ?? '') ?? 10;
          const values = Array.from({ length: n }, () => Math.floor(random() * range));
          data = type === DataType.INT64 ? BigInt64Array.from(values, BigInt) : Int32Array.from(values);
          break;
        }
        case DataType.BOOL:
          data = Uint8Array.from({ length: n }, () => (random() < 0.5 ? 1 : 0));
          break;
        case DataType.UINT8:
          data = Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
          break;
        case DataType.INT8:
          data = Int8Array.from({ length: n }, () => Math.floor(random() * 256) - 128);
          break;
        default:
          throw new UsageError(`cannot synthesize ${dtypeName(type)} input '${info.name}': give evaluation data with --data`);
      }
      return { name: info.name ?? '', dtype: type!, dims, data };
    });
    batches.push({ inputs, expected: [], source: `synthesized batch ${b}` });
  }
  const named = [...new Set(shapes.flatMap((s) => s.named))].map((d) => `${d}=${dimValue(options, d)}`);
  const given = shapes.filter((s) => s.fromShape).map((s) => `${s.name}=${s.dims.join(',')}`);
  return {
    kind: 'synthesized',
    source: [`${count} synthesized batches, seed ${options.seed ?? 0}`, ...named, ...given].join(', '),
    batches,
    samples: batches.reduce((n, b) => n + (b.inputs[0]?.dims[0] ?? 1), 0),
    synthesized: { seed: options.seed ?? 0, assumed: describeShapes(shapes, options) },
  };
}

/** Loads (or synthesizes) the data a model is evaluated on. */
export function loadEvalData(model: Model, options: DataOptions = {}): EvalData {
  let data: EvalData;
  const path = options.data;
  checkShapeOptions(model, model.source?.given ?? 'the model', options);
  if (path === undefined) data = synthesize(model, options);
  else if (!existsSync(path)) throw new InputError(`${path}: no such file or folder`);
  else if (statSync(path).isDirectory()) {
    const sets = findTestDataSets(path);
    if (sets.length === 0) throw new InputError(`${path}: no test_data_set_N folders or input_K.pb files`);
    const folder = dataFolder(path);
    const batches = sets.map((dir) => {
      const set = readTestDataSet(dir, folder);
      return { inputs: nameInputs(model, set.inputs, dir), expected: set.outputs, labels: labelsBeside(dir, folder), source: dir };
    });
    data = { kind: 'test-data-sets', source: path, batches, samples: 0 };
  } else if (path.endsWith('.npz')) {
    data = {
      kind: 'npz',
      source: path,
      batches: [{ inputs: nameInputs(model, readNpz(path), path), expected: [], source: path }],
      samples: 0,
    };
  } else if (path.endsWith('.npy') || path.endsWith('.pb')) {
    data = {
      kind: 'npy',
      source: path,
      batches: [{ inputs: nameInputs(model, [readTensorFile(path)], path), expected: [], source: path }],
      samples: 0,
    };
  } else throw new UsageError(`${path}: --data takes a folder of test_data_set_N, a .npz, .npy or .pb file`);
  if (data.kind !== 'synthesized') data.samples = data.batches.reduce((n, b) => n + (b.inputs[0]?.dims[0] ?? 1), 0);
  if (options.labels) data.labels = { source: options.labels, ...readLabelFile(options.labels) };
  return options.part ? splitData(data)[options.part] : data;
}

/**
 * What can be checked of the evaluation data before a model is compressed (so that a mistake leaves
 * no output): --dim and --shape against the model's inputs and the size of synthesized inputs, or
 * the data and labels given, read.
 */
export function checkEvalData(model: Model, options: DataOptions): void {
  const label = model.source?.given ?? 'the model';
  checkShapeOptions(model, label, options);
  if (options.data === undefined) checkSynthesizedSize(model, label, options);
  if (options.data !== undefined || options.labels !== undefined) loadEvalData(model, options);
}

/**
 * The first `count` samples of a batch, where every input has them on axis 0 and the model declares
 * no fixed size there; else the batch as it is.
 */
export function firstSamples(model: Model, inputs: NamedArray[], count: number): NamedArray[] {
  const n = inputs[0]?.dims[0];
  if (n === undefined || n <= count || inputs.some((a) => a.dims[0] !== n)) return inputs;
  const declared = new Map(model.graph.input.map((i) => [i.name, i.type?.tensor_type?.shape?.dim?.[0]]));
  if (inputs.some((a) => declared.get(a.name)?.dim_value !== undefined)) return inputs;
  return inputs.map((a) => ({
    ...a,
    dims: [count, ...a.dims.slice(1)],
    data: a.data.slice(0, (a.data.length / n) * count) as typeof a.data,
  }));
}
