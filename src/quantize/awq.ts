// AWQ (activation-aware weight quantization; Lin et al., 2023): input features with large activations
// matter more to a layer's output, so their weights are scaled up before 4-bit rounding (they then get
// a finer grid relative to their size) and the activations scaled down by the same factors, which
// leaves the float product unchanged: X·W = (X / s)·(diag(s)·W). The factors are s = a^α, a each
// input feature's RMS on the calibration data, with α searched per layer input (0 … 1) on the
// layer's output error after rounding, ‖X·ΔW‖² = Σ_n ΔW[:,n]ᵀ (XᵀX) ΔW[:,n] (α = 0, no scaling, is
// among the candidates). Weights that read the same input share the factors. The division of X goes
// into the LayerNormalization that makes it (its scale and bias) when nothing else reads it, else
// into a Mul node inserted before the layers.
import type { Model } from '../ir/model.js';
import type { Weight } from '../ir/weights.js';
import type { Calibration, GramRequest } from '../runtime/calibrate.js';
import type { GraphEditor } from '../ir/editor.js';
import { DataType, type TensorProto } from '../ir/onnx.js';
import { floatValues, makeTensor } from '../ir/tensor.js';
import { makeNode } from '../ir/build.js';
import { groupParams, type IntRange } from '../kernels/quantize.js';

const ROUND = 6755399441055744;
/** α from 0 (no scaling) to 1 in twentieths, as the paper's grid. */
const ALPHAS = Array.from({ length: 21 }, (_, i) => i / 20);
/** Columns whose output error estimates each candidate: at most this many multiply-adds per candidate (K²·columns). */
const WORK_PER_CANDIDATE = 1 << 21;

export interface AwqGroup {
  /** The activation every weight of the group reads (its MatMuls' first input). */
  input: string;
  weights: Weight[];
  /** s per input feature: the weights' rows are multiplied by it, the activation divided. */
  scales: Float32Array;
  alpha: number;
  /** The estimated output error after rounding with the chosen α, relative to α = 0 (no scaling). */
  relativeError: number;
}

/** Weights AWQ can take: [K, N] read by MatMul nodes of the main graph, all on the same activation. */
export function awqEligible(model: Model, w: Weight): boolean {
  const inputs = new Set(w.uses.map((u) => u.node.input[0]));
  return (
    w.uses.length > 0 &&
    w.tensor.dims.length === 2 &&
    inputs.size === 1 &&
    w.uses.every((u) => u.graph === model.graph && u.role === 'matmul' && !!u.node.input[0])
  );
}

/** The layer inputs whose XᵀX AWQ needs for these weights. */
export function awqRequests(model: Model, weights: Weight[]): GramRequest[] {
  return weights.filter((w) => awqEligible(model, w)).map((w) => ({ name: w.uses[0]!.node.input[0]!, k: Number(w.tensor.dims[0]) }));
}

/** Round-to-nearest of columns `cols` of W [K, N] (rows pre-multiplied by s), blocked along K, as W_eff = Q / s. */
function roundedColumns(
  w: Float32Array,
  k: number,
  n: number,
  cols: number[],
  s: Float32Array,
  range: IntRange,
  symmetric: boolean,
  block: number,
) {
  const out = new Float64Array(k * cols.length);
  const buf = new Float32Array(block);
  cols.forEach((c, j) => {
    for (let b0 = 0; b0 < k; b0 += block) {
      const end = Math.min(k, b0 + block);
      let min = Infinity,
        max = -Infinity;
      for (let r = b0; r < end; r++) {
        const x = Math.fround(w[r * n + c]! * s[r]!);
        buf[r - b0] = x;
        if (x < min) min = x;
        if (x > max) max = x;
      }
      const p = groupParams(min, max, range, symmetric);
      const inv = 1 / p.scale;
      for (let r = b0; r < end; r++) {
        let q = buf[r - b0]! * inv + ROUND - ROUND + p.zeroPoint;
        q = q < range.min ? range.min : q > range.max ? range.max : q;
        out[r * cols.length + j] = Math.fround((q - p.zeroPoint) * p.scale) / s[r]!;
      }
    }
  });
  return out;
}

/** Σ over the columns of ΔᵀHΔ, Δ = W − W_eff on those columns. */
function outputError(w: Float32Array, n: number, eff: Float64Array, cols: number[], h: Float64Array, k: number): number {
  const c = cols.length;
  const delta = new Float64Array(k * c);
  for (let r = 0; r < k; r++) for (let j = 0; j < c; j++) delta[r * c + j] = w[r * n + cols[j]!]! - eff[r * c + j]!;
  let total = 0;
  const hd = new Float64Array(c);
  for (let i = 0; i < k; i++) {
    hd.fill(0);
    const hi = i * k;
    for (let l = 0; l < k; l++) {
      const v = h[hi + l]!;
      if (v === 0) continue;
      const dl = l * c;
      for (let j = 0; j < c; j++) hd[j]! += v * delta[dl + j]!;
    }
    const di = i * c;
    for (let j = 0; j < c; j++) total += delta[di + j]! * hd[j]!;
  }
  return total;
}

export interface AwqOptions {
  range: IntRange;
  symmetric: boolean;
  block: number;
}

/** Groups the weights by the activation they read and searches each group's scales on the calibration's XᵀX. */
export function planAwq(model: Model, weights: Weight[], calibration: Calibration, options: AwqOptions): AwqGroup[] {
  const byInput = new Map<string, Weight[]>();
  for (const w of weights.filter((w) => awqEligible(model, w))) {
    const input = w.uses[0]!.node.input[0]!;
    byInput.set(input, [...(byInput.get(input) ?? []), w]);
  }
  const groups: AwqGroup[] = [];
  for (const [input, members] of byInput) {
    const gram = calibration.gram.get(input);
    const k = Number(members[0]!.tensor.dims[0]);
    if (!gram || gram.k !== k || gram.rows === 0 || members.some((w) => Number(w.tensor.dims[0]) !== k)) continue;
    const h = gram.matrix;
    const rms = Float64Array.from({ length: k }, (_, i) => Math.sqrt(Math.max(0, h[i * k + i]!) / gram.rows));
    const floor = Math.min(...[...rms].filter((x) => x > 0), 1) || 1;
    const values = members.map((w) => floatValues(w.tensor));
    const columns = members.map((w) => {
      const n = Number(w.tensor.dims[1]);
      const count = Math.max(4, Math.min(n, Math.floor(WORK_PER_CANDIDATE / (k * k))));
      return Array.from({ length: Math.min(n, count) }, (_, j) => Math.floor((j * n) / Math.min(n, count)));
    });
    let best: { alpha: number; scales: Float32Array; error: number } | undefined;
    let none = 0;
    for (const alpha of ALPHAS) {
      const s = new Float32Array(k);
      for (let i = 0; i < k; i++) s[i] = Math.max(rms[i]!, floor) ** alpha;
      // Normalized so that the factors' geometric middle of the extremes is 1 (as the reference does).
      let lo = Infinity,
        hi = 0;
      for (const x of s) {
        lo = Math.min(lo, x);
        hi = Math.max(hi, x);
      }
      const norm = Math.sqrt(lo * hi);
      for (let i = 0; i < k; i++) s[i] = Math.fround(s[i]! / norm);
      let error = 0;
      members.forEach((w, m) => {
        const n = Number(w.tensor.dims[1]);
        const eff = roundedColumns(values[m]!, k, n, columns[m]!, s, options.range, options.symmetric, options.block);
        error += outputError(values[m]!, n, eff, columns[m]!, h, k);
      });
      if (alpha === 0) none = error;
      if (!best || error < best.error) best = { alpha, scales: s, error };
    }
    if (!best || best.alpha === 0) continue;
    groups.push({ input, weights: members, scales: best.scales, alpha: best.alpha, relativeError: none > 0 ? best.error / none : 1 });
  }
  return groups;
}

/** W' = diag(s)·W for a [K, N] weight. */
export function scaledWeight(w: Weight, s: Float32Array): Float32Array {
  const values = floatValues(w.tensor);
  const [k, n] = w.tensor.dims.map(Number) as [number, number];
  const out = new Float32Array(k * n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) out[r * n + c] = Math.fround(values[r * n + c]! * s[r]!);
  return out;
}

/** A float32 [K] initializer of 1-D values. */
function vector(name: string, values: Float32Array): TensorProto {
  return makeTensor(name, DataType.FLOAT, [values.length], new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/**
 * Divides the group's activation by s: inside the LayerNormalization that makes it (constant float32
 * scale and bias of length K, nothing but the group's MatMuls reading its output), else by a Mul
 * before the group's MatMuls. Returns where it went.
 */
export function applyActivationScales(
  graph: GraphEditor,
  group: AwqGroup,
  fresh: (base: string) => string,
  initializer: (name: string) => TensorProto | undefined,
): 'LayerNormalization' | 'Mul' {
  const { input, scales } = group;
  const k = scales.length;
  const readers = new Set(group.weights.flatMap((w) => w.uses.map((u) => u.node)));
  const producer = graph.producer(input);
  const uses = graph.consumers(input);
  const ln =
    producer && producer.op_type === 'LayerNormalization' && (producer.domain ?? '') === '' && producer.output.length === 1
      ? producer
      : undefined;
  const gamma = ln ? initializer(ln.input[1] ?? '') : undefined;
  const beta = ln?.input[2] ? initializer(ln.input[2]) : undefined;
  const plain = (t: TensorProto | undefined) => !!t && t.data_type === DataType.FLOAT && t.dims.length === 1 && Number(t.dims[0]) === k;
  if (
    ln &&
    plain(gamma) &&
    (!ln.input[2] || plain(beta)) &&
    !graph.outputNames().has(input) &&
    uses.every((u) => readers.has(u.node) && u.index === 0)
  ) {
    const g = floatValues(gamma!).map((v, i) => v / scales[i]!);
    const gName = fresh(`${gamma!.name}_awq`);
    graph.addInitializer(vector(gName, g));
    graph.setInput(ln, 1, gName);
    if (beta) {
      const b = floatValues(beta).map((v, i) => v / scales[i]!);
      const bName = fresh(`${beta.name}_awq`);
      graph.addInitializer(vector(bName, b));
      graph.setInput(ln, 2, bName);
    }
    // The originals go when nothing else reads them (another LayerNormalization may share them).
    for (const t of [gamma!, beta]) if (t?.name && !graph.isRead(t.name) && !graph.outputNames().has(t.name)) graph.removeInitializer(t);
    return 'LayerNormalization';
  }
  const inv = scales.map((s) => 1 / s);
  const sName = fresh(`${input}_awq_scale`);
  const out = fresh(`${input}_awq`);
  graph.addInitializer(vector(sName, inv));
  const mul = makeNode('Mul', [input, sName], [out], fresh(`${input}_awq_mul`));
  graph.insertNode(mul, producer ? { after: producer } : 'start');
  for (const node of readers) graph.setInput(node, 0, out);
  return 'Mul';
}
