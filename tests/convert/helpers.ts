// Small models at old opsets, built in TypeScript, and the check every adapter test makes: the
// converted model, run in ONNX Runtime, gives the original's outputs (the original run at its own
// opset is the oracle).
import { join } from 'node:path';
import { expect } from 'vitest';
import { convertOpset, type ConversionSummary } from '../../src/convert/convert.js';
import { decode, encode } from '../../src/io/codec.js';
import { readModel } from '../../src/io/read.js';
import type { NamedArray } from '../../src/io/testdata.js';
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../src/ir/onnx.js';
import { writeModel } from '../../src/io/write.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { cosine } from '../helpers.js';
import { writeFileSync } from 'node:fs';
import { Model } from '../../src/ir/model.js';
import { makeTensor } from '../../src/ir/tensor.js';

export const FLOAT = 1,
  INT64 = 7,
  BOOL = 9,
  DOUBLE = 11;

const base = { floats: [], ints: [], strings: [], tensors: [], graphs: [], type_protos: [], sparse_tensors: [] };
export const ints = (name: string, v: (number | bigint)[]): AttributeProto => ({ ...base, name, type: 7, ints: v });
export const int = (name: string, v: number): AttributeProto => ({ ...base, name, type: 2, i: v });
export const float = (name: string, v: number): AttributeProto => ({ ...base, name, type: 1, f: v });
export const floats = (name: string, v: number[]): AttributeProto => ({ ...base, name, type: 6, floats: v });
export const str = (name: string, v: string): AttributeProto => ({ ...base, name, type: 3, s: new TextEncoder().encode(v) });
export const graphAttr = (name: string, g: GraphProto): AttributeProto => ({ ...base, name, type: 5, g });
export const tensorAttr = (name: string, t: TensorProto): AttributeProto => ({ ...base, name, type: 4, t });

export function vi(name: string, dims?: (number | string)[], elemType = FLOAT): ValueInfoProto {
  const shape = dims && { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) };
  return { name, type: { tensor_type: { elem_type: elemType, ...(shape ? { shape } : {}) } }, metadata_props: [] };
}

export function node(op: string, input: string[], output: string[], attribute: AttributeProto[] = [], domain?: string): NodeProto {
  return {
    op_type: op,
    input,
    output,
    attribute,
    metadata_props: [],
    device_configurations: [],
    name: `${op}_${output[0]}`,
    ...(domain ? { domain } : {}),
  };
}

export function tensor(name: string, dims: number[], values: number[], dataType = FLOAT): TensorProto {
  const raw =
    dataType === INT64 ? new Uint8Array(BigInt64Array.from(values, BigInt).buffer) : new Uint8Array(Float32Array.from(values).buffer);
  return makeTensor(name, dataType, dims, raw);
}

export function graph(
  nodes: NodeProto[],
  inputs: ValueInfoProto[],
  outputs: ValueInfoProto[],
  initializer: TensorProto[] = [],
): GraphProto {
  return {
    node: nodes,
    initializer,
    input: inputs,
    output: outputs,
    value_info: [],
    quantization_annotation: [],
    sparse_initializer: [],
    metadata_props: [],
    name: 'g',
  };
}

export function model(g: GraphProto, opset: number, extra: Partial<ModelProto> = {}): ModelProto {
  const ir = opset >= 9 ? 4 : 3;
  return {
    ir_version: ir,
    opset_import: [{ domain: '', version: opset }],
    graph: g,
    functions: [],
    metadata_props: [],
    training_info: [],
    ...extra,
  };
}

export function save(path: string, proto: ModelProto): string {
  writeFileSync(path, encode('onnx.ModelProto', proto));
  return path;
}

/** Deterministic values in [-2, 2). */
export function values(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 2 ** 32) * 4 - 2;
  }
  return out;
}

export function input(name: string, dims: number[], seed = 1): NamedArray {
  return {
    name,
    dtype: FLOAT,
    dims,
    data: values(
      dims.reduce((a, b) => a * b, 1),
      seed,
    ),
  };
}

function maxDifference(a: NamedArray, b: NamedArray): number {
  expect(b.dims).toEqual(a.dims);
  expect(b.dtype).toBe(a.dtype);
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = Number(a.data[i]),
      y = Number(b.data[i]);
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    worst = Math.max(worst, Math.abs(x - y));
  }
  return worst;
}

export interface Converted {
  summary: ConversionSummary;
  path: string;
  proto: ModelProto;
}

/** Converts `proto` (saved in `dir`) to `target`, runs both in ONNX Runtime on `inputs`, expects the same outputs within 1e-5. */
export async function expectSameOutputs(
  dir: string,
  label: string,
  proto: ModelProto,
  target: number,
  inputs: NamedArray[],
): Promise<Converted> {
  const original = save(join(dir, `${label}.onnx`), proto);
  const m = readModel(original);
  const summary = convertOpset(m, target);
  const path = join(dir, `${label}.${target}.onnx`);
  writeModel(m, path);
  const a = await run(await createSession(original), inputs);
  const b = await run(await createSession(path), inputs);
  expect(b.length, label).toBe(a.length);
  for (let i = 0; i < a.length; i++)
    expect(maxDifference(a[i]!, b[i]!), `${label} → ${target}, output ${a[i]!.name}`).toBeLessThanOrEqual(1e-5);
  const opset = readModel(path).proto.opset_import.find((o) => (o.domain ?? '') === '')!.version;
  expect(Number(opset)).toBe(target);
  return { summary, path, proto: m.proto };
}

export function opsOf(proto: ModelProto): string[] {
  return proto.graph!.node.map((n) => n.op_type ?? '');
}

/** Converts `proto` to `target` and expects the converted model's outputs to be `want` within 1e-5 (for originals ONNX Runtime cannot run). */
export async function expectConvertedOutputs(
  dir: string,
  label: string,
  proto: ModelProto,
  target: number,
  inputs: NamedArray[],
  want: Float32Array[],
): Promise<ConversionSummary> {
  // A copy: conversion works in place, and callers reuse their graphs.
  const m = new Model(decode<ModelProto>('onnx.ModelProto', encode('onnx.ModelProto', proto)));
  const summary = convertOpset(m, target);
  const path = join(dir, `${label}.${target}.onnx`);
  writeModel(m, path);
  const got = await run(await createSession(path), inputs);
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!.data as Float32Array;
    expect(g.length).toBe(want[i]!.length);
    let worst = 0;
    for (let k = 0; k < g.length; k++) worst = Math.max(worst, Math.abs(g[k]! - want[i]![k]!));
    expect(worst, `${label} → ${target}`).toBeLessThanOrEqual(1e-5);
  }
  return summary;
}

/** The lowest output cosine of `candidate` against `original` in ONNX Runtime, over inputs `x` of `dims` drawn with seeds 11, 12, 13. */
export async function worstCosine(original: string, candidate: string, dims: number[]): Promise<number> {
  let worst = 1;
  for (const seed of [11, 12, 13]) {
    const feeds = [input('x', dims, seed)];
    const [a] = await run(await createSession(original), feeds);
    const [b] = await run(await createSession(candidate), feeds);
    worst = Math.min(worst, cosine(a!.data as Float32Array, b!.data as Float32Array));
  }
  return worst;
}
