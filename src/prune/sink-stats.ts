// What the layers that read pruned channels see on calibration data: per input feature its sum and
// sum of squares, and (for least-squares reconstruction and the layer's output error) the Gram
// matrix XᵀX. A MatMul/Gemm's features are its input's last axis; a 2-D Conv's are its im2col patch
// entries (channel, kernel row, kernel column — the order of its weight), so that the Conv is a
// matrix product over them. Other Convs (grouped, 1-D/3-D, auto_pad) get per-channel figures only.
import { convPatches, type ConvPatches } from '../ir/conv.js';
import type { Sink } from './channel-groups.js';

export interface SinkStats {
  /** Input features: channels × kernel entries (im2col), or the last axis. */
  k: number;
  /** Weight entries each feature stands for in one output row: the kernel size when only channels are tracked, else 1. */
  spread: number;
  /** Features each channel position of the sink's input covers. */
  perPosition: number;
  sum: Float64Array;
  sq: Float64Array;
  /** XᵀX (k × k, upper triangle until `finish`), when asked for. */
  gram?: Float64Array;
  rows: number;
}

/** The Gram matrix is collected up to this many features (k² doubles). */
export const GRAM_LIMIT = 4096;

/** A Conv whose im2col features can be formed here (ir/conv.ts): 2-D, group 1, explicit pads. */
function geometry(sink: Sink): ConvPatches | undefined {
  return sink.op === 'Conv' && sink.groups === 1 ? convPatches(sink.node, sink.weight.dims) : undefined;
}

export function newStats(sink: Sink, gram: boolean): SinkStats {
  const dims = sink.weight.dims;
  const kernel = dims.slice(2).reduce((a, b) => a * b, 1);
  const channels = sink.op === 'Conv' ? dims[1]! * sink.groups : dims[sink.axis]!;
  const im2col = geometry(sink) !== undefined;
  const k = sink.op === 'Conv' ? (im2col ? channels * kernel : channels) : channels;
  return {
    k,
    spread: sink.op === 'Conv' && !im2col ? kernel : 1,
    perPosition: sink.op === 'Conv' ? (im2col ? kernel : 1) : sink.factor,
    sum: new Float64Array(k),
    sq: new Float64Array(k),
    gram: gram && k <= GRAM_LIMIT ? new Float64Array(k * k) : undefined,
    rows: 0,
  };
}

function addRow(stats: SinkStats, row: Float64Array | Float32Array): void {
  const { k, sum, sq, gram } = stats;
  for (let i = 0; i < k; i++) {
    const xi = row[i]!;
    if (xi === 0) continue;
    sum[i]! += xi;
    sq[i]! += xi * xi;
    if (!gram) continue;
    const gi = i * k;
    for (let j = i; j < k; j++) gram[gi + j]! += xi * row[j]!;
  }
  stats.rows++;
}

/** Adds one batch of the sink's input (`data` with shape `dims`). */
export function accumulate(stats: SinkStats, sink: Sink, data: Float32Array, dims: number[]): void {
  const geo = geometry(sink);
  if (sink.op !== 'Conv') {
    const k = stats.k;
    for (let r = 0; r + k <= data.length; r += k) addRow(stats, data.subarray(r, r + k));
    return;
  }
  const [n, c] = [dims[0]!, dims[1]!];
  const spatial = dims.slice(2).reduce((a, b) => a * b, 1);
  if (!geo) {
    // Per channel: every spatial entry is a sample of that channel.
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++) {
        const base = (b * c + ch) * spatial;
        let s = 0,
          q = 0;
        for (let i = 0; i < spatial; i++) {
          const x = data[base + i]!;
          s += x;
          q += x * x;
        }
        stats.sum[ch]! += s;
        stats.sq[ch]! += q;
      }
    stats.rows += n * spatial;
    return;
  }
  const [h, w] = [dims[2]!, dims[3]!];
  const { kh, kw, strides, pads, dilations } = geo;
  const ho = Math.floor((h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0]) + 1;
  const wo = Math.floor((w + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) / strides[1]) + 1;
  const row = new Float64Array(stats.k);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        let f = 0;
        for (let ch = 0; ch < c; ch++)
          for (let i = 0; i < kh; i++) {
            const y = oy * strides[0] - pads[0] + i * dilations[0];
            for (let j = 0; j < kw; j++, f++) {
              const x = ox * strides[1] - pads[1] + j * dilations[1];
              row[f] = y >= 0 && y < h && x >= 0 && x < w ? data[((b * c + ch) * h + y) * w + x]! : 0;
            }
          }
        addRow(stats, row);
      }
}

/** Mirrors the Gram matrix's upper triangle into the lower. */
export function finish(stats: SinkStats): void {
  const { k, gram } = stats;
  if (!gram) return;
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) gram[i * k + j] = gram[j * k + i]!;
}
