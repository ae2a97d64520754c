// How a clustered tensor is stored so that ONNX Runtime runs it: codes (UINT4 or UINT8, one per
// element) plus a float codebook, recreated under the weight's own name. Gather needs int32/int64
// indices, so the codes go through a Cast (and, per channel, an Add of each channel's offset into
// one flat codebook); all of it reads only initializers, so ONNX Runtime folds it at load and
// computes with the float weight. When each codebook is evenly spaced, a DequantizeLinear with a
// scale and zero point says the same thing without a codebook.
import { DataType, type NodeProto, type TensorProto } from '../ir/onnx.js';
import type { NameAllocator } from '../ir/names.js';
import { makeTensor } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import { packNibbles } from '../kernels/quantize.js';
import { intAttribute, makeNode } from '../ir/build.js';
import { toFloat16 } from '../ir/half.js';

export interface Clustered {
  dims: number[];
  bits: 4 | 8;
  /** One codebook for the tensor, or one per index along `axis`. */
  codebooks: Float32Array[];
  axis?: number;
  /** Per element, its index into its codebook. */
  codes: Uint8Array;
}

export interface Stored {
  initializers: TensorProto[];
  nodes: NodeProto[];
  form: string;
}

function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function codeTensor(name: string, c: Clustered, codes: ArrayLike<number>): TensorProto {
  return c.bits === 4
    ? makeTensor(name, DataType.UINT4, c.dims, packNibbles(codes))
    : makeTensor(name, DataType.UINT8, c.dims, Uint8Array.from(codes));
}

/** Where each element's channel is: elements per step along the axis, and the axis length. */
function channelOf(dims: number[], axis: number): (i: number) => number {
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = dims[axis]!;
  return (i) => Math.floor(i / inner) % channels;
}

export interface Lattice {
  scale: number;
  zeroPoint: number;
  /** For each centroid, its code: centroid = (code − zeroPoint) · scale, exactly in float32. */
  codes: number[];
}

/**
 * Whether the centroids sit on a lattice that DequantizeLinear reproduces exactly in float32:
 * integer multiples of one scale, shifted by a zero point that keeps every code in 0..maxCode.
 */
export function evenlySpaced(centroids: Float32Array, maxCode: number): Lattice | undefined {
  if (centroids.length === 0) return undefined;
  let step = Infinity;
  for (let j = 1; j < centroids.length; j++) step = Math.min(step, centroids[j]! - centroids[j - 1]!);
  if (centroids.length === 1) step = Math.abs(centroids[0]!) || 1;
  const scale = Math.fround(step);
  if (!(scale > 0) || !Number.isFinite(scale)) return undefined;
  const steps = Array.from(centroids, (c) => Math.round(c / scale));
  if (steps.some((t, j) => Math.fround(t * scale) !== centroids[j])) return undefined;
  const zeroPoint = Math.max(0, -Math.min(...steps));
  if (zeroPoint > maxCode || Math.max(...steps) + zeroPoint > maxCode) return undefined;
  return { scale, zeroPoint, codes: steps.map((t) => t + zeroPoint) };
}

/** Cast(codes) [+ Add(channel offsets)] → Gather(codebook) → the weight's name. */
export function gatherForm(weight: Weight, names: NameAllocator, c: Clustered): Stored {
  // A float16 weight's codebook is float16 (its centroids already rounded to it): Gather then makes float16.
  const half = weight.tensor.data_type === DataType.FLOAT16;
  const stride = Math.max(...c.codebooks.map((b) => b.length));
  const flat = new Float32Array(stride * c.codebooks.length);
  for (const [ch, b] of c.codebooks.entries()) flat.set(b, ch * stride);
  const codesName = names.fresh(`${weight.name}_codes`);
  const bookName = names.fresh(`${weight.name}_codebook`);
  const intCodes = names.fresh(`${weight.name}_codes_int32`);
  const book = half
    ? makeTensor(bookName, DataType.FLOAT16, [flat.length], new Uint8Array(toFloat16(flat).buffer))
    : makeTensor(bookName, DataType.FLOAT, [flat.length], floatBytes(flat));
  const initializers = [codeTensor(codesName, c, c.codes), book];
  const nodes = [makeNode('Cast', [codesName], [intCodes], names.fresh(`${weight.name}_Cast`), [intAttribute('to', DataType.INT32)])];
  let indices = intCodes;
  if (c.axis !== undefined && c.codebooks.length > 1) {
    const offsetsName = names.fresh(`${weight.name}_code_offsets`);
    const shape = c.dims.map((d, i) => (i === c.axis ? d : 1));
    const offsets = Int32Array.from({ length: c.codebooks.length }, (_, ch) => ch * stride);
    initializers.push(makeTensor(offsetsName, DataType.INT32, shape, new Uint8Array(offsets.buffer)));
    indices = names.fresh(`${weight.name}_indices`);
    nodes.push(makeNode('Add', [intCodes, offsetsName], [indices], names.fresh(`${weight.name}_Add`)));
  }
  nodes.push(makeNode('Gather', [bookName, indices], [weight.name], names.fresh(`${weight.name}_Gather`), [intAttribute('axis', 0)]));
  const per =
    c.codebooks.length > 1 ? `per-channel (axis ${c.axis}), ${c.codebooks.length}×${stride} codebook` : `${flat.length}-entry codebook`;
  return { initializers, nodes, form: `Gather uint${c.bits} codes, ${per}` };
}

/** DequantizeLinear(codes, scale, zero point) → the weight's name, when every codebook is a lattice. */
export function dequantizeForm(weight: Weight, names: NameAllocator, c: Clustered, lattices: Lattice[]): Stored {
  const perChannel = c.axis !== undefined && lattices.length > 1;
  const channel = perChannel ? channelOf(c.dims, c.axis!) : () => 0;
  const codes = new Uint8Array(c.codes.length);
  for (let i = 0; i < codes.length; i++) codes[i] = lattices[channel(i)]!.codes[c.codes[i]!]!;
  const codesName = names.fresh(`${weight.name}_codes`);
  const scaleName = names.fresh(`${weight.name}_scale`);
  const zeroName = names.fresh(`${weight.name}_zero_point`);
  const paramDims = perChannel ? [lattices.length] : [];
  const zeros = lattices.map((l) => l.zeroPoint);
  const initializers = [
    codeTensor(codesName, c, codes),
    makeTensor(scaleName, DataType.FLOAT, paramDims, floatBytes(Float32Array.from(lattices, (l) => l.scale))),
    c.bits === 4
      ? makeTensor(zeroName, DataType.UINT4, paramDims, packNibbles(zeros))
      : makeTensor(zeroName, DataType.UINT8, paramDims, Uint8Array.from(zeros)),
  ];
  const attributes = perChannel ? [intAttribute('axis', c.axis!)] : [];
  const nodes = [
    makeNode(
      'DequantizeLinear',
      [codesName, scaleName, zeroName],
      [weight.name],
      names.fresh(`${weight.name}_DequantizeLinear`),
      attributes,
    ),
  ];
  return {
    initializers,
    nodes,
    form: `DequantizeLinear uint${c.bits} ${perChannel ? `per-channel (axis ${c.axis})` : 'per-tensor'} (evenly spaced centroids)`,
  };
}
