// Helpers for the sharing tests: running a model on a test set and comparing outputs byte for byte,
// building variants of the fixtures, and reading back what a clustered weight computes.
import { statSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import { encode } from '../../src/io/codec.js';
import { readTestDataSet, type NamedArray } from '../../src/io/testdata.js';
import { DataType, type TensorProto } from '../../src/ir/onnx.js';
import type { Model } from '../../src/ir/model.js';
import { tensorValues } from '../../src/ir/tensor.js';
import { seededRandom } from '../../src/kernels/random.js';
import { createSession, run } from '../../src/runtime/ort.js';

export async function outputsOf(path: string, dataDir: string): Promise<NamedArray[]> {
  const session = await createSession(path);
  return run(session, readTestDataSet(dataDir).inputs);
}

function rawBytes(a: NamedArray): Buffer {
  const d = a.data as Exclude<NamedArray['data'], string[]>;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** Runs both models in ONNX Runtime on the test set and requires byte-identical outputs. */
export async function expectBitIdentical(reference: string, candidate: string, dataDir: string): Promise<void> {
  const [a, b] = [await outputsOf(reference, dataDir), await outputsOf(candidate, dataDir)];
  expect(b.map((o) => o.name)).toEqual(a.map((o) => o.name));
  a.forEach((o, i) => {
    expect(b[i]!.dims).toEqual(o.dims);
    expect(Buffer.compare(rawBytes(o), rawBytes(b[i]!)), `output ${o.name} differs`).toBe(0);
  });
}

export function save(model: Model, path: string): string {
  writeFileSync(path, encode('onnx.ModelProto', model.proto));
  return path;
}

export const bytesOf = (path: string) => statSync(path).size;

export function setFloats(t: TensorProto, values: Float32Array): void {
  t.raw_data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  t.float_data = [];
}

/** Standard normal noise from a seed. */
export function noise(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
}

export function rms(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!;
  return Math.sqrt(s / values.length);
}

/** What a clustered weight's Cast [→ Add] → Gather chain computes, evaluated here from the stored codes and codebook. */
export function gathered(model: Model, name: string): Float32Array {
  const graph = model.graph;
  const producer = (out: string) => graph.node.find((n) => n.output[0] === out)!;
  const init = (n: string) => graph.initializer.find((t) => t.name === n)!;
  const gather = producer(name);
  const book = tensorValues(init(gather.input[0]!)) as Float32Array;
  let offsets: Int32Array | undefined,
    offsetDims: number[] = [];
  let cast = producer(gather.input[1]!);
  if (cast.op_type === 'Add') {
    const o = init(cast.input[1]!);
    offsets = tensorValues(o) as Int32Array;
    offsetDims = o.dims.map(Number);
    cast = producer(cast.input[0]!);
  }
  const codesTensor = init(cast.input[0]!);
  const dims = codesTensor.dims.map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const packed = tensorValues(codesTensor) as Uint8Array;
  const codes =
    codesTensor.data_type === DataType.UINT4 ? Uint8Array.from({ length: n }, (_, i) => (packed[i >> 1]! >> ((i & 1) * 4)) & 0x0f) : packed;
  const out = new Float32Array(n);
  const axis = offsetDims.findIndex((d) => d > 1);
  const inner = axis < 0 ? 1 : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    const offset = offsets && axis >= 0 ? offsets[Math.floor(i / inner) % dims[axis]!]! : 0;
    out[i] = book[codes[i]! + offset]!;
  }
  return out;
}
