// A 2-D Conv as a matrix product: each output position reads one patch of its input (channel,
// kernel row, kernel column — the order of the weight's last three axes), so the Conv is its weight
// [O, C·kh·kw] times one row of patch entries per position (im2col). Calibration measures those rows
// (runtime/calibrate.ts), structured pruning's statistics read them (prune/sink-stats.ts), and the
// calibrated pruning passes prune the weight as such a matrix.
import type { NodeProto } from './onnx.js';
import { toNumber } from './tensor.js';

export interface ConvPatches {
  channels: number;
  kh: number;
  kw: number;
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
}

function ints(node: NodeProto, name: string): number[] | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a ? a.ints.map(toNumber) : undefined;
}

/**
 * The patch geometry of a Conv with weight dims `dims` [O, C, kh, kw], where its patches can be
 * formed as rows: 2-D, one group, explicit pads (no auto_pad other than NOTSET). Otherwise undefined.
 */
export function convPatches(node: NodeProto, dims: readonly number[]): ConvPatches | undefined {
  if (node.op_type !== 'Conv' || node.domain || dims.length !== 4) return undefined;
  const group = node.attribute.find((a) => a.name === 'group');
  if (group && toNumber(group.i ?? 1) !== 1) return undefined;
  const autoPad = node.attribute.find((a) => a.name === 'auto_pad')?.s;
  if (autoPad && autoPad.length > 0 && new TextDecoder().decode(autoPad) !== 'NOTSET') return undefined;
  const s = ints(node, 'strides') ?? [1, 1];
  const p = ints(node, 'pads') ?? [0, 0, 0, 0];
  const d = ints(node, 'dilations') ?? [1, 1];
  if (s.length !== 2 || p.length !== 4 || d.length !== 2) return undefined;
  return {
    channels: dims[1]!,
    kh: dims[2]!,
    kw: dims[3]!,
    strides: [s[0]!, s[1]!],
    pads: [p[0]!, p[1]!, p[2]!, p[3]!],
    dilations: [d[0]!, d[1]!],
  };
}

/** Entries of one patch: the matrix product's input features. */
export function patchFeatures(p: ConvPatches): number {
  return p.channels * p.kh * p.kw;
}

/** The same geometry, as a string (to tell apart two Convs that read one value differently). */
export function patchesKey(p: ConvPatches): string {
  return `${p.channels}x${p.kh}x${p.kw}/s${p.strides.join(',')}/p${p.pads.join(',')}/d${p.dilations.join(',')}`;
}
