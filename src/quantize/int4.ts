// 4-bit blockwise quantization: weights in blocks of 16–128 along the reduction axis, a scale per
// block (and a zero point when asymmetric). MatMul weights become ONNX Runtime's
// com.microsoft.MatMulNBits (its fast CPU path); other weights (Gemm, Conv, Gather, or a MatMul
// weight also read by other ops) become opset-21 DequantizeLinear on INT4/UINT4 with block_size.
import { calibrationProblem } from '../runtime/calibrate.js';
import { DataType, type NodeProto, type TensorProto } from '../ir/onnx.js';
import type { Model } from '../ir/model.js';
import { ModelEditor } from '../ir/editor.js';
import { ensureOpset, requireDefaultOpset } from '../convert/raise.js';
import { opsetVersion } from '../ir/opset.js';
import { floatSource, floatValues, makeTensor, tensorByteLength } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import { selectionOptions } from '../pass/options.js';
import { usedOps } from '../pass/ops.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { chooseWeights } from '../pass/select.js';
import { INT4, INT4_FULL, INT8, UINT4, UINT8, clipRatios, packNibbles, perBlock, type QuantizeResult } from '../kernels/quantize.js';
import { KernelPool, inOrder, windowFor } from '../kernels/pool.js';
import type { JobProgress } from '../kernels/progress.js';
import { simdKernels } from '../kernels/simd.js';
import { intAttribute, replaceWeight } from '../ir/build.js';
import { dequantizeWeight } from './replace.js';
import { gptqRequests, planGptq, type GptqPlan } from './gptq.js';
import { applyActivationScales, awqRequests, planAwq, scaledWeight } from './awq.js';
import { calibrate, type Calibration } from '../runtime/calibrate.js';
import { namePattern } from '../ir/weights.js';
import { toFloat16 } from '../ir/half.js';
import { dtypeName } from '../ir/dtype.js';
import { restoreInt8Weights } from './requantize.js';

const MS_DOMAIN = 'com.microsoft';

/** Scales in the weight's own float type (float32, or float16 for a float16 weight). */
function scaleTensor(name: string, dims: number[], scales: Float32Array, dataType: number | undefined): TensorProto {
  if (dataType === DataType.FLOAT16) return makeTensor(name, DataType.FLOAT16, dims, new Uint8Array(toFloat16(scales).buffer));
  return makeTensor(name, DataType.FLOAT, dims, new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength));
}

/** A MatMul weight read by MatMul nodes alone (and not a graph output) can become MatMulNBits. */
function matMulOnly(w: Weight): boolean {
  return w.uses.length > 0 && w.uses.every((u) => u.role === 'matmul') && w.otherUses.length === 0 && !w.isGraphOutput;
}

/**
 * An embedding table (read by Gather on axis 0 alone, an even number of columns) can become
 * com.microsoft.GatherBlockQuantized, which dequantizes only the rows it gathers.
 */
function gatherOnly(w: Weight): boolean {
  return (
    w.uses.length > 0 &&
    w.uses.every((u) => u.role === 'gather') &&
    w.otherUses.length === 0 &&
    !w.isGraphOutput &&
    Number(w.tensor.dims[1]) % 2 === 0
  );
}

/** MatMulNBits' B: [N, k_blocks, block/2] bytes, codes low-first along K; scales [N, k_blocks]. */
function packForMatMulNBits(q: QuantizeResult, K: number, N: number, block: number, symmetric: boolean) {
  const kBlocks = Math.ceil(K / block);
  const blob = block / 2;
  const zeros = symmetric ? undefined : new Uint8Array(N * Math.ceil(kBlocks / 2));
  // Group numbering of perBlock over [K, N] along axis 0 is (block b, column n) → b * N + n.
  if (zeros) {
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < kBlocks; b++) zeros[n * Math.ceil(kBlocks / 2) + (b >> 1)]! |= (q.zeroPoints[b * N + n]! & 0x0f) << ((b & 1) * 4);
    }
  }
  if (q.packed) return { packed: q.packed.data, scales: q.packed.scales, zeros, kBlocks, blob };
  const scales = new Float32Array(N * kBlocks);
  for (let n = 0; n < N; n++) for (let b = 0; b < kBlocks; b++) scales[n * kBlocks + b] = q.scales[b * N + n]!;
  const packed = simdKernels().packMatMulNBits(q.codes, q.zeroPoints, K, N, block, nbitsShift(symmetric));
  return { packed, scales, zeros, kBlocks, blob };
}

/** Symmetric codes are signed (−8..7) around 0; MatMulNBits codes are unsigned with zero point 8. */
const nbitsShift = (symmetric: boolean) => (symmetric ? 8 : 0);

/**
 * MatMulNBits' B for 8 bits: [N, k_blocks, block] bytes, codes along K (unsigned: symmetric codes + 128,
 * the op's default zero point for 8 bits), K padded with the zero code; zero points one byte a block.
 */
function packForMatMulNBits8(q: QuantizeResult, K: number, N: number, block: number, symmetric: boolean) {
  const kBlocks = Math.ceil(K / block);
  const packed = new Uint8Array(N * kBlocks * block);
  const scales = new Float32Array(N * kBlocks);
  const zeros = symmetric ? undefined : new Uint8Array(N * kBlocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kBlocks; b++) {
      const g = b * N + n;
      scales[n * kBlocks + b] = q.scales[g]!;
      if (zeros) zeros[n * kBlocks + b] = q.zeroPoints[g]!;
      const base = (n * kBlocks + b) * block;
      const fill = symmetric ? 128 : q.zeroPoints[g]!;
      for (let i = 0; i < block; i++) {
        const k = b * block + i;
        packed[base + i] = k < K ? (symmetric ? q.codes[k * N + n]! + 128 : q.codes[k * N + n]!) : fill;
      }
    }
  }
  return { packed, scales, zeros, kBlocks, blob: block };
}

/** The mean squared activation of the weight's layer input on the calibration data (1 without it). */
function activationEnergy(w: Weight, calibration: Calibration | undefined): number {
  const input = w.uses[0]?.node.input[0];
  const gram = input && w.uses[0]?.role === 'matmul' ? calibration?.gram.get(input) : undefined;
  if (!gram || gram.rows === 0) return 1;
  let trace = 0;
  for (let i = 0; i < gram.k; i++) trace += gram.matrix[i * gram.k + i]!;
  return trace / gram.rows / gram.k;
}

/** Bytes of a weight's codes, scales and zero points at `bits`, blocks of `block` along its reduction axis. */
function blockBytes(w: Weight, axis: number, block: number, bits: number, symmetric: boolean): number {
  const dims = w.tensor.dims.map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const groups = (n / dims[axis]!) * Math.ceil(dims[axis]! / block);
  return Math.ceil((n * bits) / 8) + groups * 4 + (symmetric ? 0 : Math.ceil((groups * bits) / 8));
}

/**
 * mix=auto: round-to-nearest at 4 bits for every weight (on the kernels), scored by its squared error
 * times its layer input's mean squared activation; the largest scores get 8 bits while the bytes stay
 * within `budget` more than every weight at 4 bits (a weight that does not fit is passed over for
 * smaller ones).
 */
async function chooseEightBit(
  weights: Weight[],
  already: Set<Weight>,
  o: {
    pool: KernelPool;
    block: number;
    symmetric: boolean;
    axisOf: (w: Weight) => number;
    budget: number;
    activation: (w: Weight) => number;
    calibrated: boolean;
  },
): Promise<{ weights: Weight[]; note: string }> {
  const range = o.symmetric ? INT4_FULL : UINT4;
  const scored = await Promise.all(
    weights.map(async (w) => {
      const dims = w.tensor.dims.map(Number);
      const q = await o.pool.run({
        values: floatSource(w.tensor),
        groups: { kind: 'block', dims, axis: o.axisOf(w), block: o.block },
        options: { range, symmetric: o.symmetric },
      });
      const e = q.error;
      // relRmsError = √(Σ error² / Σ x²): the squared error back from it and Σ x².
      let sumSq = 0;
      for (const x of floatValues(w.tensor)) sumSq += x * x;
      return { w, score: e.relRmsError * e.relRmsError * sumSq * o.activation(w) };
    }),
  );
  const four = (w: Weight) => blockBytes(w, o.axisOf(w), o.block, 4, o.symmetric);
  const extra = (w: Weight) => blockBytes(w, o.axisOf(w), o.block, 8, o.symmetric) - four(w);
  const allowance = o.budget * weights.reduce((a, w) => a + four(w), 0);
  let used = [...already].reduce((a, w) => a + extra(w), 0);
  const chosen: Weight[] = [];
  for (const { w } of scored.filter((s) => !already.has(s.w)).sort((a, b) => b.score - a.score)) {
    if (used + extra(w) > allowance) continue;
    used += extra(w);
    chosen.push(w);
  }
  const all4 = weights.reduce((a, w) => a + four(w), 0);
  return {
    weights: chosen,
    note: `mix=auto: ${chosen.length} weight${chosen.length === 1 ? '' : 's'} at 8 bits (largest 4-bit error${o.calibrated ? ' × mean squared activation' : ''} first), ${((100 * used) / Math.max(1, all4)).toFixed(1)} % more bytes than all at 4 bits (budget ${(100 * o.budget).toFixed(0)} %)${
      chosen.length
        ? `: ${chosen
            .slice(0, 4)
            .map((w) => w.name)
            .join(', ')}${chosen.length > 4 ? ', …' : ''}`
        : ''
    }`,
  };
}

export const int4Pass = definePass({
  family: 'quantize',
  method: 'int4',
  description:
    '4-bit weights in blocks along the reduction axis: MatMulNBits for MatMul weights, opset-21 DequantizeLinear (INT4/UINT4, block_size) for the rest',
  options: {
    block: { type: 'integer', min: 16, max: 128, default: 32, description: 'block size along the reduction axis: 16, 32, 64 or 128' },
    symmetric: { type: 'boolean', default: true, description: 'codes −8..7 around zero, or 0..15 with a zero point per block' },
    format: {
      type: 'enum',
      choices: ['auto', 'matmulnbits', 'dq'],
      default: 'auto',
      description:
        'auto: MatMulNBits where possible, DequantizeLinear elsewhere; dq: DequantizeLinear everywhere; matmulnbits: MatMul weights only',
    },
    gather: {
      type: 'enum',
      choices: ['dq', 'blockquantized'],
      default: 'dq',
      description:
        'embedding tables read by Gather: dq (DequantizeLinear of the whole table, standard ONNX) or blockquantized (com.microsoft.GatherBlockQuantized, which dequantizes only the gathered rows; ONNX Runtime)',
    },
    'accuracy-level': {
      type: 'integer',
      min: 0,
      max: 4,
      default: 0,
      description:
        "MatMulNBits' accuracy_level: 0 unset (float compute), 4 computes with int8 activations (faster; what ONNX Runtime itself uses when it fuses DequantizeLinear+MatMul)",
    },
    requantize: {
      type: 'boolean',
      default: false,
      description:
        'weights the model already holds as int8/uint8 codes behind a DequantizeLinear (per tensor or per axis) are first put back as the float values it computes, then quantized to 4 bits like float weights (without it they are left as they are: already int8)',
    },
    search: {
      type: 'enum',
      choices: ['none', 'mse', 'hqq'],
      default: 'mse',
      description:
        "mse: per-block clipping search for the smallest squared error, round-to-nearest's scale among the candidates, the chosen scale then re-fitted by least squares for its codes where that lowers the error (symmetric); hqq: half-quadratic optimization of each block's scale (symmetric) or zero point (asymmetric), kept where it beats round-to-nearest; none: round to nearest, scales from min/max",
    },
    calibration: {
      type: 'string',
      description:
        "inputs to calibrate on (a test_data_set folder, .npz, .npy or .pb, like --data): MatMul weights of the main graph are then quantized with GPTQ (gptq=true), which minimizes each layer's output error on these inputs, and with awq=true first scaled by AWQ",
    },
    awq: {
      type: 'boolean',
      default: false,
      description:
        "with calibration=: AWQ — each MatMul weight's input features scaled by their activation RMS to the power α (searched per layer input on the output error after rounding), the weight's rows multiplied and the activation divided (inside the LayerNormalization that makes it, else by a Mul)",
    },
    gptq: {
      type: 'boolean',
      default: true,
      description: 'with calibration=: GPTQ on the (AWQ-scaled) MatMul weights; false rounds them as without calibration',
    },
    keep8: {
      type: 'string',
      description:
        "weights given 8 bits instead of 4 (MatMulNBits bits=8, else int8/uint8 DequantizeLinear, blocks as the 4-bit ones): name patterns with * and ?, separated by | (e.g. lm_head*|*down_proj*), matched against the weight's and its readers' names",
    },
    mix: {
      type: 'enum',
      choices: ['none', 'auto'],
      default: 'none',
      description:
        "auto: 8 bits for the weights whose 4-bit error is largest (round-to-nearest's squared error, times the mean squared activation of the layer's input with calibration=), as long as the weights stay within mix-budget more bytes than all 4-bit",
    },
    'mix-budget': {
      type: 'number',
      min: 0,
      max: 1,
      default: 0.1,
      description: 'mix=auto: at most this fraction more bytes than every weight at 4 bits',
    },
    ops: { type: 'string', default: 'MatMul,Gemm,Conv,Gather', description: 'op types whose weights are quantized' },
    ...selectionOptions(256),
  },
  validate(options): string | undefined {
    if (![16, 32, 64, 128].includes(options.block)) return `block must be 16, 32, 64 or 128, got ${options.block}`;
    if (options.awq && options.calibration === undefined) return 'awq needs calibration=DATA (the activations it scales by)';
    if (options.keep8?.split('|').some((p) => p.trim() === ''))
      return `keep8 takes name patterns separated by |, with none empty (e.g. lm_head*|*down_proj*), got '${options.keep8}'`;
    return calibrationProblem(options);
  },
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    const { block, symmetric, format, 'accuracy-level': accuracyLevel } = options;
    if (options.requantize) {
      const restored = restoreInt8Weights(model);
      const forms = [...new Set(restored.map((r) => r.from))].join(', ');
      summary.notes.push(
        restored.length > 0
          ? `requantize: ${restored.length} weight${restored.length === 1 ? '' : 's'} behind an 8-bit DequantizeLinear (${forms}) put back as their dequantized float32 values, then quantized to 4 bits (errors are against those values)`
          : 'requantize: no 8-bit DequantizeLinear weight (per tensor or per axis, constant codes and scale) in the main graph',
      );
    }
    // float16 weights keep float16 scales (MatMulNBits, GatherBlockQuantized and DequantizeLinear take
    // them), so that their readers keep computing in float16 (q4f16).
    const { weights, skipped } = chooseWeights(
      model,
      options,
      (w) => (format === 'matmulnbits' && !matMulOnly(w) ? 'format=matmulnbits, and this weight is not read by MatMul alone' : undefined),
      [DataType.FLOAT, DataType.FLOAT16],
    );
    summary.skipped.push(...skipped);
    const toNBits = weights.filter((w) => format !== 'dq' && matMulOnly(w));
    const toDq = weights.filter((w) => !toNBits.includes(w));
    const toGbq = new Set(options.gather === 'blockquantized' ? toDq.filter(gatherOnly) : []);
    const all = [...toNBits, ...toDq];
    const edits = new ModelEditor(model);
    const names = edits.names;
    const calibrated = options.calibration !== undefined && all.length > 0 && (options.awq || options.gptq || options.mix === 'auto');
    const calibration = calibrated
      ? await calibrate(
          model,
          {
            grams: [
              ...(options.gptq ? gptqRequests(model, all) : []),
              ...(options.awq || options.mix === 'auto' ? awqRequests(model, all) : []),
            ],
          },
          options.calibration!,
          context.progress,
          context.threads,
        )
      : undefined;
    // AWQ: the weights' rows scaled (what is quantized below), the activations divided in the graph.
    let gptq: GptqPlan | undefined;
    const scaled = new Map<Weight, Float32Array>();
    const inputScales = new Map<Weight, Float32Array>();
    if (options.awq && calibration) {
      const groups = planAwq(model, all, calibration, { range: symmetric ? INT4_FULL : UINT4, symmetric, block });
      const inits = new Map(model.graph.initializer.map((t) => [t.name, t]));
      const where = { LayerNormalization: 0, Mul: 0 };
      for (const g of groups) {
        for (const w of g.weights) {
          scaled.set(w, scaledWeight(w, g.scales));
          inputScales.set(w, g.scales);
        }
      }
      // GPTQ finds each layer's XᵀX by the name its input had when calibrated: planned before the rewiring.
      gptq = options.gptq
        ? await planGptq(model, all, calibration, { inputScales, progress: context.progress, threads: context.threads })
        : undefined;
      for (const g of groups)
        where[
          applyActivationScales(
            edits.graph(model.graph),
            g,
            (b) => names.fresh(b),
            (n) => inits.get(n),
          )
        ]++;
      const alphas = groups.map((g) => g.alpha);
      summary.notes.push(
        `AWQ on ${scaled.size} weights (${groups.length} layer inputs, α ${alphas.length ? `${Math.min(...alphas)}–${Math.max(...alphas)}` : '–'}), calibrated on ${calibration.samples} samples from ${calibration.source}: ` +
          `activations divided in ${where.LayerNormalization} LayerNormalization${where.LayerNormalization === 1 ? '' : 's'} and by ${where.Mul} Mul node${where.Mul === 1 ? '' : 's'}` +
          (groups.length
            ? `; estimated output error ×${(groups.reduce((a, g) => a + g.relativeError, 0) / groups.length).toFixed(3)} of unscaled rounding (mean)`
            : '') +
          '; weight errors are measured on the scaled weights',
      );
    }
    if (!options.awq)
      gptq =
        options.gptq && calibration
          ? await planGptq(model, all, calibration, { progress: context.progress, threads: context.threads })
          : undefined;
    if (gptq) summary.notes.push(gptq.note);
    // Eight candidates per block: round-to-nearest's scale (the extreme on −8), then max|x|/7 times
    // 1, 0.95 … 0.70, the smallest squared error kept: never worse than round-to-nearest on it. The
    // set and the measure were chosen among others on the char LM, digits and BERT-base, and checked
    // on data and a model none of it was chosen on (bench/RESULTS.md, "A 4-bit search never worse
    // than round-to-nearest"). Eight fill two passes of the four-lane kernel. The chosen scale is
    // then re-fitted by least squares for its codes where that lowers the error (`refit`; chosen the
    // same way: "The chosen 4-bit scale re-fitted by least squares").
    const ratios = options.search === 'mse' ? clipRatios(6, 0.7) : undefined;
    const hqq = options.search === 'hqq';
    if (toNBits.length > 0 || toGbq.size > 0) ensureOpset(model.proto, MS_DOMAIN, 1);
    // Round-to-nearest's scale is every search's first candidate (INT4_FULL: the extreme on code −8).
    const opts = { range: symmetric ? INT4_FULL : UINT4, symmetric, clipRatios: ratios, refit: ratios !== undefined, hqq };
    // GPTQ's scales: max|x|/7 with a search asked for, as before the search took round-to-nearest's scale in.
    const gptqRange = symmetric ? (options.search === 'none' ? INT4_FULL : INT4) : UINT4;
    // Tensors are quantized on worker threads a few ahead, and applied here in order.
    const pool = new KernelPool(context.threads);
    const window = windowFor(context.threads);
    const axisOf = (w: Weight) => {
      const axes = new Set(w.uses.map((u) => u.reductionAxis));
      return axes.size === 1 ? [...axes][0]! : w.uses[0]!.reductionAxis;
    };
    const eight = new Set<Weight>();
    if (options.keep8) {
      const pattern = namePattern(options.keep8);
      for (const w of all) if ([w.name, ...w.uses.map((u) => u.node.name ?? '')].some((n) => n !== '' && pattern.test(n))) eight.add(w);
      summary.notes.push(`keep8: ${eight.size} weight${eight.size === 1 ? '' : 's'} at 8 bits (${options.keep8})`);
    }
    if (options.mix === 'auto') {
      const chosen = await chooseEightBit(all, eight, {
        pool,
        block,
        symmetric,
        axisOf,
        budget: options['mix-budget'],
        activation: (w) => activationEnergy(w, calibration),
        calibrated: calibration !== undefined,
      });
      for (const w of chosen.weights) eight.add(w);
      summary.notes.push(chosen.note);
    }
    const opts8 = { range: symmetric ? INT8 : UINT8, symmetric };
    /** Blocks along the reduction axis; GPTQ where calibrated (a [K, N] weight blocked along K). */
    const start = (w: Weight, axis: number, progress: JobProgress, nbits = false): Promise<QuantizeResult> => {
      const dims = w.tensor.dims.map(Number);
      if (eight.has(w))
        return pool.run(
          { values: scaled.get(w) ?? floatSource(w.tensor), groups: { kind: 'block', dims, axis, block }, options: opts8 },
          progress,
        );
      const factor = axis === 0 && dims.length === 2 ? gptq?.factors.get(w) : undefined;
      if (factor)
        return pool.run(
          {
            kind: 'gptq',
            values: scaled.get(w) ?? floatSource(w.tensor),
            k: dims[0]!,
            n: dims[1]!,
            factor,
            range: gptqRange,
            symmetric,
            block,
          },
          progress,
        );
      // MatMulNBits weights are packed where the kernels ran, saving a copy of the codes each way.
      const pack = nbits ? { K: dims[0]!, N: dims[1]!, block, shift: nbitsShift(symmetric) } : undefined;
      return pool.run(
        {
          values: scaled.get(w) ?? floatSource(w.tensor),
          groups: { kind: 'block', dims, axis, block },
          options: { ...opts, nbits: pack, pairs: !nbits },
        },
        progress,
      );
    };
    /** Puts the new initializers (and nodes) in the weight's place and records what changed. */
    const finish = (
      w: Weight,
      q: QuantizeResult,
      initializers: TensorProto[],
      nodes: NodeProto[],
      before: number,
      shape: number[],
      form: string,
    ) => {
      replaceWeight(edits, w, initializers, nodes);
      model.settle(initializers);
      const after = initializers.reduce((n, t) => n + t.raw_data!.byteLength, 0);
      summary.bytesBefore += before;
      summary.bytesAfter += after;
      summary.tensors.push({
        name: w.name,
        shape,
        dtypeBefore: dtypeName(w.tensor.data_type),
        dtypeAfter: eight.has(w) ? (symmetric ? 'int8' : 'uint8') : symmetric ? 'int4' : 'uint4',
        bytesBefore: before,
        bytesAfter: after,
        ...q.error,
        form,
        details: q.errorBeforeSearch ? { relRmsErrorMinMax: q.errorBeforeSearch.relRmsError } : undefined,
      });
    };
    const applyNBits = (w: Weight, q: QuantizeResult) => {
      const [K, N] = w.tensor.dims.map(Number) as [number, number];
      const before = tensorByteLength(w.tensor);
      const factor = eight.has(w) ? undefined : gptq?.factors.get(w);
      const bits = eight.has(w) ? 8 : 4;
      const { packed, scales, zeros, kBlocks, blob } =
        bits === 8 ? packForMatMulNBits8(q, K, N, block, symmetric) : packForMatMulNBits(q, K, N, block, symmetric);
      const bName = names.fresh(`${w.name}_Q${bits}`),
        sName = names.fresh(`${w.name}_scales`);
      const initializers = [
        makeTensor(bName, DataType.UINT8, [N, kBlocks, blob], packed),
        scaleTensor(sName, [N * kBlocks], scales, w.tensor.data_type),
      ];
      const zName = zeros ? names.fresh(`${w.name}_zero_points`) : undefined;
      if (zeros) initializers.push(makeTensor(zName!, DataType.UINT8, [zeros.length], zeros));
      for (const use of w.uses) {
        const node: NodeProto = use.node;
        node.op_type = 'MatMulNBits';
        node.domain = MS_DOMAIN;
        edits.graph(use.graph).setInputs(node, [node.input[0]!, bName, sName, ...(zName ? [zName] : [])]);
        node.attribute = [intAttribute('K', K), intAttribute('N', N), intAttribute('bits', bits), intAttribute('block_size', block)];
        if (accuracyLevel > 0) node.attribute.push(intAttribute('accuracy_level', accuracyLevel));
      }
      finish(
        w,
        q,
        initializers,
        [],
        before,
        [K, N],
        `MatMulNBits ${bits}-bit block ${block}${symmetric ? '' : ' with zero points'}${factor ? ', GPTQ' : ''}`,
      );
    };
    const applyDq = (w: Weight, q: QuantizeResult) => {
      const dims = w.tensor.dims.map(Number);
      const axis = axisOf(w);
      const before = tensorByteLength(w.tensor);
      const groups = perBlock(dims, axis, block);
      // GPTQ works on [K, N] with blocks along K: the layout of a MatMul weight (axis 0).
      const wide = eight.has(w);
      const factor = !wide && axis === 0 && dims.length === 2 ? gptq?.factors.get(w) : undefined;
      const scaleDims = dims.map((d, i) => (i === axis ? groups.blocks : d));
      const type = wide ? (symmetric ? DataType.INT8 : DataType.UINT8) : symmetric ? DataType.INT4 : DataType.UINT4;
      const codes = (c: Int8Array | Uint8Array | Int16Array) => (wide ? new Uint8Array(Int8Array.from(c).buffer) : packNibbles(c));
      const { initializers, node } = dequantizeWeight(
        w,
        names,
        { dataType: type, dims, bytes: wide ? codes(q.codes) : (q.packed?.data ?? packNibbles(q.codes)) },
        { dims: scaleDims, values: q.scales, dataType: w.tensor.data_type },
        symmetric ? undefined : { dataType: type, bytes: codes(q.zeroPoints) },
        [intAttribute('axis', axis), intAttribute('block_size', block)],
      );
      finish(
        w,
        q,
        initializers,
        [node],
        before,
        dims,
        `DequantizeLinear ${wide ? (symmetric ? 'int8' : 'uint8') : symmetric ? 'int4' : 'uint4'} block ${block} along axis ${axis}${factor ? ', GPTQ' : ''}`,
      );
    };
    /**
     * GatherBlockQuantized in its uint8 form (bits 4), which needs no opset 21 or IR 10: two codes a
     * byte along each row, symmetric codes shifted to 0..15 (the op's default zero point is 8), zero
     * points packed two a byte along each row.
     */
    const applyGbq = (w: Weight, q: QuantizeResult) => {
      const [V, D] = w.tensor.dims.map(Number) as [number, number];
      const before = tensorByteLength(w.tensor);
      const blocks = Math.ceil(D / block);
      const data = q.packed?.data ?? packNibbles(q.codes);
      // (c + 8) & 15 is (c & 15) ^ 8: the shift is one XOR per byte of packed signed codes.
      if (symmetric) for (let i = 0; i < data.length; i++) data[i] = data[i]! ^ 0x88;
      const qName = names.fresh(`${w.name}_Q4`),
        sName = names.fresh(`${w.name}_scales`);
      const initializers = [
        makeTensor(qName, DataType.UINT8, [V, D / 2], data),
        scaleTensor(sName, [V, blocks], q.scales, w.tensor.data_type),
      ];
      let zName: string | undefined;
      if (!symmetric) {
        const rowBytes = Math.ceil(blocks / 2);
        const zeros = new Uint8Array(V * rowBytes);
        for (let v = 0; v < V; v++)
          for (let b = 0; b < blocks; b++) zeros[v * rowBytes + (b >> 1)]! |= (q.zeroPoints[v * blocks + b]! & 0x0f) << ((b & 1) * 4);
        zName = names.fresh(`${w.name}_zero_points`);
        initializers.push(makeTensor(zName, DataType.UINT8, [V, rowBytes], zeros));
      }
      for (const use of w.uses) {
        const node: NodeProto = use.node;
        node.op_type = 'GatherBlockQuantized';
        node.domain = MS_DOMAIN;
        edits.graph(use.graph).setInputs(node, [qName, node.input[1]!, sName, ...(zName ? [zName] : [])]);
        node.attribute = [
          intAttribute('gather_axis', 0),
          intAttribute('quantize_axis', 1),
          intAttribute('block_size', block),
          intAttribute('bits', 4),
        ];
      }
      finish(w, q, initializers, [], before, [V, D], `GatherBlockQuantized 4-bit block ${block}${symmetric ? '' : ' with zero points'}`);
    };
    /**
     * DequantizeLinear with block_size needs opset 21. Asked once the MatMulNBits weights are applied,
     * as their MatMuls then no longer count among the ops the raise must keep working.
     */
    let dqAllowed: boolean | undefined;
    const allowDq = (): boolean => {
      if (dqAllowed !== undefined) return dqAllowed;
      dqAllowed = true;
      if ((opsetVersion(model.proto, '') ?? 1) < 21) {
        try {
          const change = requireDefaultOpset(model.proto, 21, usedOps(model));
          if (change) summary.notes.push(`default opset raised from ${change.from} to 21 for blocked 4-bit DequantizeLinear`);
          // The conversion edited the graphs in place, not through this pass's editor.
          if (change) edits.reindex();
        } catch (e) {
          for (const w of toDq.filter((w) => !toGbq.has(w)))
            summary.skipped.push({ name: w.name, reason: `needs opset 21 for 4-bit DequantizeLinear, and ${(e as Error).message}` });
          dqAllowed = false;
        }
      }
      return dqAllowed;
    };
    // One stream of jobs, MatMulNBits weights first: in two phases, the embedding table ran alone on
    // one worker at the end of the second while the other had nothing left.
    const nbits = new Set(toNBits);
    try {
      const report = { progress: context.progress, label: 'int4', bytesOf: (w: Weight) => tensorByteLength(w.tensor) };
      for await (const [w, q] of inOrder(
        [...toNBits, ...toDq],
        window,
        (w, progress) => (nbits.has(w) ? start(w, 0, progress, !eight.has(w)) : start(w, axisOf(w), progress)),
        report,
      )) {
        if (nbits.has(w)) applyNBits(w, q);
        else if (toGbq.has(w) && !eight.has(w)) applyGbq(w, q);
        else if (allowDq()) applyDq(w, q);
      }
    } finally {
      await pool.close();
    }
    return summary;
  },
});
