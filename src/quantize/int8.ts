// int8 quantization. Each chosen weight is stored as int8 (symmetric) or uint8 (asymmetric) codes
// with a float scale per tensor or per output channel, in one of two forms: weight-only (a
// DequantizeLinear node recreates the float weight, and ONNX Runtime runs the model unchanged
// otherwise) or dynamic (the MatMul computes in integers: see ./dynamic.ts). `mode` picks the form:
// weight, dynamic, or auto (the default), which gives each op the form measured fastest for it.
import { calibrationProblem } from '../runtime/calibrate.js';
import { DataType, type TensorProto } from '../ir/onnx.js';
import { dtypeName } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { ModelEditor } from '../ir/editor.js';
import { requireDefaultOpset } from '../convert/raise.js';
import { opsetVersion } from '../ir/opset.js';
import { floatSource, makeTensor, tensorByteLength, toFloat32, type FloatSource } from '../ir/tensor.js';
import { channelAxis, RECURRENT_OPS, WEIGHT_OPS, type Weight, type WeightUse } from '../ir/weights.js';
import { selectionOptions } from '../pass/options.js';
import { usedOps } from '../pass/ops.js';
import { definePass, emptySummary, type PassContext, type PassSummary, type TensorChange } from '../pass/pass.js';
import { chooseWeights } from '../pass/select.js';
import { INT8, UINT8, clipRatios, type ErrorStats, type QuantizeResult } from '../kernels/quantize.js';
import { KernelPool, inOrder, windowFor } from '../kernels/pool.js';
import type { JobProgress } from '../kernels/progress.js';
import { intAttribute, makeNode, replaceWeight } from '../ir/build.js';
import { dequantizeWeight } from './replace.js';
import { dynamicEligible, rewriteDynamic } from './dynamic.js';
import { planGptq } from './gptq.js';
import { GUARD_MIN_COSINE, guardIntegerForm, trialCosine, type CheckOptions, type GuardResult } from './int8-guard.js';
import { checkAdvice, uncheckable } from './probe.js';
import { lstmPairs, quantizeRows, rewriteLstm } from './lstm-integer.js';
import { quantizeStatic, STATIC_OPTIONS, staticProblem } from './static.js';
import { foldBatchNorms } from './fold-batchnorm.js';
import { guardWeightOnly } from './int8-weight-guard.js';
import { existsSync } from 'node:fs';

/**
 * mode=auto: the form per op that ran fastest in ONNX Runtime (CPU, 1 thread; the figures are in
 * bench/RESULTS.md, §"4. ONNX Runtime latency per output form" and its "Default form per op"):
 * - MatMul → dynamic. The integer form (which ORT fuses into DynamicQuantizeMatMul) is the fastest
 *   form on every model measured; weight-only DequantizeLinear is faster than fp32 on BERT's large
 *   matrices but slower on the char LM's small ones.
 * - Gemm (plain: no transA, alpha = beta = 1, which is what rewriteDynamic handles) → dynamic too.
 *   Weight-only Gemm is about as fast as fp32, and the integer form ran faster than both on all
 *   three models tried (GPT-2 small, the MLP, the digits CNN).
 * - Conv, ConvTranspose → weight-only. Every quantized Conv form is slower than fp32, and the
 *   integer form, ConvInteger, far slower still, so it is not used.
 * - Gather → weight-only (there is no integer form; DequantizeLinear costs a little).
 * A weight goes dynamic only if every use takes that form and nothing else reads it.
 */
const AUTO_DYNAMIC_OPS = new Set(['matmul', 'gemm']);

/**
 * float16 and bfloat16 weights are quantized weight-only, from their values converted exactly to
 * float32: int8 codes with float32 scales, DequantizeLinear (opset 13, whose output is float32 only),
 * then a Cast back to the weight's own dtype, so that the consumer keeps its types and activations
 * keep the model's dtype. DequantizeLinear-19 could output float16/bfloat16 itself (with scales of
 * that dtype), but raising an older model to 19 converts the whole model, and float32 scales cost
 * two bytes more per channel. The integer form (MatMulInteger) stays float32-only.
 */
const HALF_DTYPES = [DataType.FLOAT16, DataType.BFLOAT16];

/**
 * LSTM/GRU/RNN W [D, G·H, I] and R [D, G·H, H] (always weight-only) want a scale per direction and
 * output row: a 2-D scale, which DequantizeLinear's per-axis form cannot take. With one direction,
 * per-axis on axis 1 is exactly that. With two, the codes are stored as [D·G·H, I] with per-axis
 * scales on axis 0 (a scale per direction×row) and a Reshape restores [D, G·H, I]: it works at
 * opset 13 like the rest of the pass, where blocked DequantizeLinear (block_size = I along axis 2)
 * would need opset 21, and it keeps each direction's own range, which one scale per row shared by
 * both directions would not.
 */
function recurrentRows(w: Weight, dims: number[], axis: number | undefined): boolean {
  return axis === 1 && dims.length === 3 && dims[0]! > 1 && w.uses.length > 0 && w.uses.every((u) => u.role === 'recurrent');
}
/**
 * The 8-bit weights' check (int8-weight-guard.ts) runs a copy of the model holding each weight twice
 * (float32 and int8's values): on BERT-base's 420 MiB it took the default int8 from 1.2 s to 4.2 s and
 * its peak memory from 0.43 to 1.5 GB, so models with more weights than this are not checked (said).
 */
const WEIGHT_CHECK_MAX_BYTES = 64 * 2 ** 20;
const autoDynamic = (use: WeightUse) => AUTO_DYNAMIC_OPS.has(use.role) && dynamicEligible(use);

/** "3 MatMul, 1 Gather+MatMul": weights counted by the op types that read them. */
function countByOps(weights: Weight[]): string {
  const counts = new Map<string, number>();
  for (const w of weights) {
    const direct = [...new Set(w.uses.map((u) => u.node.op_type ?? ''))].sort().join('+');
    const ops =
      direct ||
      `${[...new Set(w.otherUses.map((n) => n.op_type ?? ''))].sort().join('+')} → ${[...new Set(w.movedUses.map((u) => u.node.op_type ?? ''))].sort().join('+')}`;
    counts.set(ops, (counts.get(ops) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([ops, n]) => `${n} ${ops}`)
    .join(', ');
}

export const int8Pass = definePass({
  family: 'quantize',
  method: 'int8',
  description:
    '8-bit weights: int8/uint8 codes with per-channel or per-tensor scales; MatMul/Gemm computed in integers (DynamicQuantizeLinear + MatMulInteger), other weights dequantized by DequantizeLinear (mode=auto)',
  options: {
    granularity: {
      type: 'enum',
      choices: ['channel', 'tensor'],
      default: 'channel',
      description: 'one scale per output channel, or one per tensor',
    },
    symmetric: { type: 'boolean', default: true, description: 'int8 with zero point 0, or uint8 with a zero point (asymmetric)' },
    check: {
      type: 'enum',
      choices: ['measure', 'none'],
      default: 'measure',
      description: `mode=auto: before a MatMul/Gemm weight takes the integer form, run the model on the calibration data (or synthesized inputs) with its activations quantized as that form will, and keep weight-only the layers whose quantized activations move the outputs (cosine below ${GUARD_MIN_COSINE}); none: take the integer form without running anything`,
    },
    mode: {
      type: 'enum',
      choices: ['auto', 'weight', 'dynamic', 'static'],
      default: 'auto',
      description:
        'auto: each op gets the form measured fastest in ONNX Runtime (bench/RESULTS.md): weights read only by MatMul or plain Gemm computed in integers, Conv, ConvTranspose and Gather weights weight-only (today the same output as dynamic); weight: every weight stored in 8 bits, computed in float (DequantizeLinear); dynamic: MatMul/Gemm computed in integers (DynamicQuantizeLinear + MatMulInteger) wherever the pass has that form, other weights as weight-only; static: Conv, Gemm and MatMul computed in integers with activation scales calibrated on calibration=DATA (QDQ, which ONNX Runtime fuses into QLinearConv, QGemm, QLinearMatMul and MatMulIntegerToFloat)',
    },
    search: {
      type: 'enum',
      choices: ['none', 'mse'],
      default: 'none',
      description: 'none: scales from min/max; mse: clipping search per group for the smallest squared error',
    },
    calibration: {
      type: 'string',
      description:
        "inputs to calibrate on (a test_data_set folder, .npz, .npy or .pb, like --data): MatMul weights of the main graph are then quantized with GPTQ, which minimizes each layer's output error on these inputs; with mode=static, the activation ranges are measured on them",
    },
    ops: {
      type: 'string',
      default: `${WEIGHT_OPS},${RECURRENT_OPS},Einsum,Attention`,
      description:
        'op types whose weights are quantized (LSTM, GRU, RNN: W and R; Einsum: a constant operand, on its last output axis; com.microsoft Attention: its QKV weights; these weight-only)',
    },
    'fold-batchnorm': {
      type: 'boolean',
      default: true,
      description:
        "fold each BatchNormalization into the Conv before it (W·γ/√(σ²+ε) and a bias) when that Conv's weight is quantized: the same function with four tensors fewer per layer, and the per-channel scales take γ/√(σ²+ε) exactly (ONNX Runtime folds them the same way when it loads the model); mode=static always folds",
    },
    ...STATIC_OPTIONS,
    ...selectionOptions(256),
  },
  validate: (options) => calibrationProblem(options) ?? staticProblem(options, existsSync),
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    // mode=static computes Conv, MatMul and Gemm in integers; every other weight then goes weight-only.
    const integer = options.mode === 'static' ? await quantizeStatic(model, options, context, summary) : new Set<string>();
    let granularity = options.granularity;
    const symmetric = options.symmetric;
    const chosen = chooseWeights(model, options, undefined, [DataType.FLOAT, ...HALF_DTYPES], { moved: true });
    const candidates = chosen.weights.filter((w) => !integer.has(w.name));
    summary.skipped.push(...chosen.skipped.filter((s) => !integer.has(s.name)));
    if (candidates.length === 0) return summary;
    if (options['fold-batchnorm'] && options.mode !== 'static') foldBeforeQuantizing(model, candidates, summary);
    const mode = options.mode === 'static' ? 'weight' : options.mode;
    const takesDynamic = (w: Weight) =>
      w.tensor.data_type === DataType.FLOAT &&
      w.otherUses.length === 0 &&
      !w.isGraphOutput &&
      w.uses.every(mode === 'auto' ? autoDynamic : dynamicEligible);
    let dynamic = mode === 'dynamic' || (mode === 'auto' && candidates.some(takesDynamic));
    // DequantizeLinear needs opset 10 (13 for per-axis scales); DynamicQuantizeLinear needs 11.
    const current = opsetVersion(model.proto, '') ?? 1;
    for (;;) {
      const needed = Math.max(granularity === 'channel' ? 13 : 10, dynamic ? 11 : 0);
      if (current >= needed) break;
      try {
        const change = requireDefaultOpset(model.proto, needed, usedOps(model));
        if (change)
          summary.notes.push(
            `default opset raised from ${change.from} to ${change.to} for ${dynamic ? 'DynamicQuantizeLinear and ' : ''}DequantizeLinear`,
          );
        break;
      } catch (e) {
        if (granularity === 'channel' && current >= 10) {
          granularity = 'tensor';
          summary.notes.push(`per-tensor scales used: ${(e as Error).message}`);
        } else if (dynamic) {
          // DynamicQuantizeLinear cannot be had: every weight takes the weight-only form.
          dynamic = false;
          summary.notes.push(`every weight weight-only (the dynamic form needs opset 11): ${(e as Error).message}`);
        } else {
          for (const w of candidates)
            summary.skipped.push({
              name: w.name,
              reason: `opset ${current} has no DequantizeLinear and cannot be raised: ${(e as Error).message}`,
            });
          return summary;
        }
      }
    }
    if (model.proto.ir_version !== undefined && Number(model.proto.ir_version) < 4 && candidates.some((w) => w.isGraphInput)) {
      model.proto.ir_version = 4;
      summary.notes.push('IR version raised to 4: quantized initializers are no longer listed as graph inputs');
    }
    const defaultOpset = opsetVersion(model.proto, '') ?? 1;
    const edits = new ModelEditor(model);
    const names = edits.names;
    const range = symmetric ? INT8 : UINT8;
    const gptqData = options.mode === 'static' ? undefined : options.calibration;
    const gptq =
      gptqData !== undefined && granularity === 'channel'
        ? await planGptq(
            model,
            candidates.filter((w) => w.tensor.data_type === DataType.FLOAT),
            gptqData,
            { progress: context.progress, threads: context.threads },
          )
        : undefined;
    if (gptq) summary.notes.push(gptq.note);
    else if (gptqData !== undefined) summary.notes.push('calibration ignored: GPTQ needs per-channel scales');
    const ratios = options.search === 'mse' ? clipRatios(20, 0.5) : undefined;
    // What every check below runs the model on, and on how many of ONNX Runtime's threads.
    const checkOptions: CheckOptions = {
      data: options.calibration,
      inputs: context.inputs,
      seed: context.seed,
      threads: context.checkThreads,
    };
    // The fidelity guard (int8-guard.ts): the integer form only where it is measured harmless.
    let guard: GuardResult | undefined;
    if (mode === 'auto' && dynamic && options.check === 'measure') {
      try {
        guard = await guardIntegerForm(model, candidates.filter(takesDynamic), checkOptions);
      } catch (e) {
        // Not measured, not chosen: the integer form only where its error is measured small.
        const why = uncheckable(e);
        const integer = candidates.filter(takesDynamic);
        guard = {
          demoted: new Map(integer.map((w) => [w, `the integer form could not be checked (${why}); weight-only instead`])),
          cosine: Number.NaN,
          source: '',
          unchecked: [],
        };
        summary.notes.push(
          `auto: the integer form could not be checked, so ${integer.length} MatMul/Gemm weight${integer.length === 1 ? ' is' : 's are'} weight-only (${checkAdvice(e)}): ${why}`,
        );
      }
    }
    const isDynamic = (w: Weight) => dynamic && takesDynamic(w) && !guard?.demoted.has(w);
    // The integer LSTM (lstm-integer.ts), measured faster in ONNX Runtime; checked like the integer MatMul.
    let lstms = (mode === 'auto' || mode === 'dynamic') && symmetric && granularity === 'channel' ? lstmPairs(model, candidates) : [];
    const lstmCodes = new Map(lstms.map((p) => [p, [quantizeRows(p.w), quantizeRows(p.r)] as const]));
    if (lstms.length > 0 && mode === 'auto' && options.check === 'measure') {
      const check = await trialCosine(
        model,
        (trial) => {
          const trialEdits = new ModelEditor(trial);
          const graph = trialEdits.graph(trial.graph);
          for (const p of lstms) {
            const node = trial.graph.node[model.graph.node.indexOf(p.node)]!;
            const [qw, qr] = lstmCodes.get(p)!;
            const made = rewriteLstm(trial, trialEdits, { ...p, node }, qw, qr);
            graph.removeInitializer(p.w.tensor);
            graph.removeInitializer(p.r.tensor);
            for (const t of made) graph.addInitializer(t);
          }
        },
        checkOptions,
      ).catch((e: unknown) => ({ cosine: Number.NaN, source: '', why: uncheckable(e), advice: checkAdvice(e) }));
      const n = lstms.length;
      if ('why' in check) {
        summary.notes.push(
          `auto: the integer LSTM could not be checked, so ${n} LSTM${n === 1 ? ' is' : 's are'} weight-only (${check.advice}): ${check.why}`,
        );
        lstms = [];
      } else if (check.cosine < GUARD_MIN_COSINE) {
        summary.notes.push(
          `auto: the integer LSTM (DynamicQuantizeLSTM) checked on ${check.source}: lowest output cosine ${check.cosine.toFixed(6)} < ${GUARD_MIN_COSINE}; ${n} LSTM${n === 1 ? '' : 's'} kept weight-only`,
        );
        lstms = [];
      } else
        summary.notes.push(
          `auto: the integer LSTM (DynamicQuantizeLSTM) checked on ${check.source}: lowest output cosine ${check.cosine.toFixed(6)} with it`,
        );
    }
    const inLstm = new Set(lstms.flatMap((p) => [p.w, p.r]));
    if (mode === 'auto') {
      const integer = candidates.filter(isDynamic),
        weightOnly = candidates.filter((w) => !isDynamic(w) && !inLstm.has(w));
      const n = (ws: Weight[]) => `${ws.length} weight${ws.length === 1 ? '' : 's'}${ws.length ? ` (${countByOps(ws)})` : ''}`;
      const lstm = lstms.length > 0 ? `; ${lstms.length} LSTM${lstms.length === 1 ? '' : 's'} in integers by DynamicQuantizeLSTM` : '';
      summary.notes.push(
        `auto: ${n(integer)} dynamic, computed in integers by MatMulInteger; ${n(weightOnly)} weight-only, through DequantizeLinear${lstm}`,
      );
    }
    if (guard && guard.source !== '') {
      const n = guard.demoted.size,
        unchecked = guard.unchecked.length;
      summary.notes.push(
        `auto: the integer form checked on ${guard.source}: lowest output cosine ${guard.cosine.toFixed(6)} with it${n > 0 ? `; ${n} weight${n === 1 ? '' : 's'} kept weight-only, whose quantized activations moved the outputs` : ''}${unchecked > 0 ? `; ${unchecked} used inside subgraphs, where the check does not reach, take it unchecked` : ''}`,
      );
    }
    for (const p of lstms) {
      const [qw, qr] = lstmCodes.get(p)!;
      const made = rewriteLstm(model, edits, p, qw, qr);
      replaceWeight(edits, p.w, made, []);
      replaceWeight(edits, p.r, [], []);
      model.settle(made);
      for (const [w, q, part] of [
        [p.w, qw, made.slice(0, 3)],
        [p.r, qr, made.slice(3)],
      ] as const) {
        const bytes = part.reduce((n, t) => n + (t.raw_data?.byteLength ?? 0), 0);
        summary.tensors.push({
          name: w.name,
          shape: w.tensor.dims.map(Number),
          dtypeBefore: 'float32',
          dtypeAfter: 'int8',
          bytesBefore: tensorByteLength(w.tensor),
          bytesAfter: bytes,
          ...q.error,
          form: 'DynamicQuantizeLSTM int8 per direction and row (the LSTM computed in integers)',
        });
        summary.bytesBefore += tensorByteLength(w.tensor);
        summary.bytesAfter += bytes;
      }
    }
    const rest = candidates.filter((w) => !inLstm.has(w));
    const axisOf = (w: Weight) => (granularity === 'channel' ? channelAxis(w) : undefined);
    // Tensors are quantized on worker threads a few ahead, and applied here in order.
    const pool = new KernelPool(context.threads);
    const start = (w: Weight, progress: JobProgress): Promise<QuantizeResult> => {
      if (isDynamic(w)) return dynamicCodes(w, pool, symmetric, granularity, ratios, gptq?.factors.get(w), progress);
      const dims = w.tensor.dims.map(Number);
      const axis = axisOf(w);
      const factor = gptq?.factors.get(w);
      if (recurrentRows(w, dims, axis))
        return pool.run(
          {
            values: floatSource(w.tensor),
            groups: { kind: 'channel', dims: [dims[0]! * dims[1]!, dims[2]!], axis: 0 },
            options: { range, symmetric, clipRatios: ratios },
          },
          progress,
        );
      if (factor && axis === 1)
        return pool.run({ kind: 'gptq', values: floatSource(w.tensor), k: dims[0]!, n: dims[1]!, factor, range, symmetric }, progress);
      return pool.run(
        {
          values: floatSource(w.tensor),
          groups: axis === undefined ? { kind: 'tensor' } : { kind: 'channel', dims, axis },
          options: { range, symmetric, clipRatios: ratios },
        },
        progress,
      );
    };
    try {
      // The 8-bit weights' fidelity guard (int8-weight-guard.ts): the weights are quantized first and
      // run in the model as int8 makes them, and the ones that move the outputs stay float32.
      const early = new Map<Weight, QuantizeResult>();
      let keptFloat = new Map<Weight, string>();
      /** Weights stored in blocks of INT8_BLOCK along their reduction axis (when per channel moved the outputs). */
      const blocked = new Set<Weight>();
      const guarded =
        options.mode !== 'static' && options.check === 'measure'
          ? rest.filter((w) => w.tensor.data_type === DataType.FLOAT && inMainGraph(model, w))
          : [];
      const guardedBytes = guarded.reduce((n, w) => n + tensorByteLength(w.tensor), 0);
      if (guardedBytes > WEIGHT_CHECK_MAX_BYTES) {
        summary.notes.push(
          `the 8-bit weights are not checked in the model: ${(guardedBytes / 2 ** 20).toFixed(0)} MiB of them, over the ${WEIGHT_CHECK_MAX_BYTES / 2 ** 20} MiB the check holds a second copy of (compare with --eval)`,
        );
      } else if (guarded.length > 0) {
        for (const w of guarded) early.set(w, await start(w, () => {}));
        // The integer form's codes are [K, N] with a scale per column (or one); a weight stored [N, K] is transposed back.
        const valuesOf = (w: Weight): Float32Array => {
          if (!isDynamic(w)) return dequantizedValues(early.get(w)!, codeLayout(w, axisOf(w)));
          const { transposed, K, N } = matrixOf(w, w.tensor.dims.map(Number));
          const kn = dequantizedValues(early.get(w)!, { dims: [K, N], axis: granularity === 'channel' ? 1 : undefined });
          if (!transposed) return kn;
          const nk = new Float32Array(kn.length);
          for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) nk[n * K + k] = kn[k * N + n]!;
          return nk;
        };
        const values = new Map(guarded.map((w) => [w, valuesOf(w)]));
        const codeBytes = new Map(guarded.map((w) => [w, early.get(w)!.codes.byteLength + 4 * early.get(w)!.scales.length]));
        try {
          // Per channel first; then every weight in blocks along its reduction axis (opset 21); only
          // then do the weights that cost the most stay float32 (each measured: one run per weight).
          let checked = await guardWeightOnly(model, guarded, values, codeBytes, checkOptions, false);
          let blockRest: { results: Map<Weight, QuantizeResult>; values: Map<Weight, Float32Array>; enough: boolean } | undefined;
          const blockable = guarded.filter((w) => blockAxisOf(w) !== undefined);
          if (checked.cosineAll < GUARD_MIN_COSINE && granularity === 'channel' && blockable.length > 0) {
            const results = new Map<Weight, QuantizeResult>();
            for (const w of blockable) {
              const dims = w.tensor.dims.map(Number);
              results.set(
                w,
                await pool.run(
                  {
                    values: floatSource(w.tensor),
                    groups: { kind: 'block', dims, axis: blockAxisOf(w)!, block: INT8_BLOCK },
                    options: { range, symmetric, clipRatios: ratios },
                  },
                  () => {},
                ),
              );
            }
            // The weights that cannot be blocked keep their values per channel.
            const blockValues = new Map(
              guarded.map((w) => [
                w,
                results.has(w)
                  ? dequantizedBlocks(results.get(w)!, w.tensor.dims.map(Number), blockAxisOf(w)!, INT8_BLOCK)
                  : values.get(w)!,
              ]),
            );
            const inBlocks = await guardWeightOnly(model, guarded, blockValues, codeBytes, checkOptions, false);
            const figures = `lowest output cosine ${checked.cosineAll.toFixed(6)} < ${GUARD_MIN_COSINE} with all ${guarded.length} as int8 per channel, ${inBlocks.cosineAll.toFixed(6)} with ${blockable.length} of them in blocks of ${INT8_BLOCK} along the reduction axis`;
            const enough = inBlocks.cosineAll >= GUARD_MIN_COSINE;
            // Closer in blocks: those stay in blocks (opset 21); short of the line still, the weights
            // kept float32 are then chosen with them in place.
            let why = '';
            if (inBlocks.cosineAll > checked.cosineAll)
              try {
                if ((opsetVersion(model.proto, '') ?? 1) < 21) {
                  const change = requireDefaultOpset(model.proto, 21, usedOps(model));
                  if (change) summary.notes.push(`default opset raised from ${change.from} to 21 for blocked int8 DequantizeLinear`);
                  edits.reindex();
                }
                blockRest = { results, values: blockValues, enough };
                if (enough) why = ', so those are in blocks (DequantizeLinear, opset 21; check=none skips this)';
              } catch (e) {
                why = `, but blocks need opset 21: ${(e as Error).message}`;
              }
            summary.notes.push(`the 8-bit weights checked on ${checked.source}: ${figures}${why}`);
          }
          if (checked.cosineAll < GUARD_MIN_COSINE) {
            if (!blockRest?.enough) {
              checked = await guardWeightOnly(model, guarded, blockRest?.values ?? values, codeBytes, checkOptions);
              keptFloat = checked.kept;
            }
            for (const [w, r] of blockRest?.results ?? [])
              if (!keptFloat.has(w)) {
                blocked.add(w);
                early.set(w, r);
              }
          }
          const n = keptFloat.size;
          const bytes = [...keptFloat.keys()].reduce((b, w) => b + tensorByteLength(w.tensor), 0);
          if (!blockRest?.enough)
            summary.notes.push(
              n === 0
                ? `the 8-bit weights checked on ${checked.source}: lowest output cosine ${checked.cosineAll.toFixed(6)} with all ${guarded.length} as int8`
                : `the 8-bit weights checked on ${checked.source}: lowest output cosine ${checked.cosineAll.toFixed(6)} < ${GUARD_MIN_COSINE} with all ${guarded.length} as int8; ${n} weight${n === 1 ? '' : 's'} (${(bytes / 1000).toFixed(1)} kB) kept float32, those costing the most cosine per byte saved, each measured alone: ${checked.cosine.toFixed(6)} with the rest as int8${blockRest ? `, ${blocked.size} of them in blocks of ${INT8_BLOCK}` : ''} (check=none skips this)`,
            );
          for (const [w, why] of keptFloat) summary.skipped.push({ name: w.name, reason: why });
        } catch (e) {
          summary.notes.push(`the 8-bit weights could not be checked, so every weight is int8 (${checkAdvice(e)}): ${uncheckable(e)}`);
        }
      }
      const quantizeOnce = (w: Weight, progress: JobProgress): Promise<QuantizeResult> => {
        const done = early.get(w);
        if (!done) return start(w, progress);
        early.delete(w);
        progress(1);
        return Promise.resolve(done);
      };
      const report = { progress: context.progress, label: 'int8', bytesOf: (w: Weight) => tensorByteLength(w.tensor) };
      const quantized = rest.filter((w) => !keptFloat.has(w));
      for await (const [w, computed] of inOrder(quantized, windowFor(context.threads), quantizeOnce, report)) {
        const dims = w.tensor.dims.map(Number);
        if (blocked.has(w)) {
          summary.tensors.push(applyBlocks(model, edits, w, computed, symmetric, summary));
          continue;
        }
        if (isDynamic(w)) {
          summary.tensors.push(applyDynamic(model, edits, w, computed, dims, symmetric, granularity, gptq?.factors.get(w), summary));
          continue;
        }
        const axis = axisOf(w);
        const factor = gptq?.factors.get(w);
        const result = computed;
        const codes = result.codes;
        const zeroPoints = symmetric ? Int8Array.from(result.zeroPoints) : Uint8Array.from(result.zeroPoints);
        const rows = recurrentRows(w, dims, axis);
        const codeDims = rows ? [dims[0]! * dims[1]!, dims[2]!] : dims;
        const scaleDims = axis === undefined ? [] : [codeDims[rows ? 0 : axis]!];
        // A float16/bfloat16 weight: from opset 19 DequantizeLinear takes scales of its type and makes it
        // directly; before, float32 scales and a Cast back.
        const half = w.tensor.data_type !== DataType.FLOAT;
        const halfScales = half && defaultOpset >= 19;
        const { initializers, node } = dequantizeWeight(
          w,
          names,
          { dataType: symmetric ? DataType.INT8 : DataType.UINT8, dims: codeDims, bytes: new Uint8Array(codes.buffer) },
          {
            dims: scaleDims,
            values: axis === undefined ? Float32Array.of(result.scales[0]!) : result.scales,
            dataType: halfScales ? w.tensor.data_type : DataType.FLOAT,
          },
          // A symmetric zero point is 0, which DequantizeLinear assumes when it is absent: not stored.
          symmetric ? undefined : { dataType: DataType.UINT8, bytes: new Uint8Array(zeroPoints.buffer) },
          axis === undefined ? [] : [intAttribute('axis', rows ? 0 : axis)],
        );
        const nodes = [node];
        if (rows) {
          // [D·G·H, I] back to [D, G·H, I] (see recurrentRows).
          const shape = names.fresh(`${w.name}_shape`),
            flat = names.fresh(`${w.name}_rows`);
          initializers.push(makeTensor(shape, DataType.INT64, [3], new Uint8Array(BigInt64Array.from(dims, BigInt).buffer)));
          node.output = [flat];
          nodes.push(makeNode('Reshape', [flat, shape], [w.name], names.fresh(`${w.name}_Reshape`)));
        }
        if (half && !halfScales) {
          // float32 from DequantizeLinear back to the weight's own dtype (see HALF_DTYPES).
          const last = nodes[nodes.length - 1]!,
            float = names.fresh(`${w.name}_float`);
          last.output = [float];
          nodes.push(makeNode('Cast', [float], [w.name], names.fresh(`${w.name}_Cast`), [intAttribute('to', w.tensor.data_type!)]));
        }
        replaceWeight(edits, w, initializers, nodes);
        summary.tensors.push(
          settleWeight(model, summary, w, initializers, {
            dtypeAfter: symmetric ? 'int8' : 'uint8',
            error: result.error,
            form: `DequantizeLinear ${symmetric ? 'int8 symmetric' : 'uint8 asymmetric'} ${axis === undefined ? 'per-tensor' : rows ? 'per direction and row (axis 0 of [directions·rows, columns], then Reshape)' : `per-channel (axis ${axis})`}${factor && axis === 1 ? ', GPTQ' : ''}${halfScales ? `, ${dtypeName(w.tensor.data_type)} scales` : half ? `, Cast to ${dtypeName(w.tensor.data_type)}` : ''}${w.uses.length === 0 ? `, read through ${countByOps([w]).replace(/^1 /, '')}` : ''}${guard?.demoted.has(w) ? `: ${guard.demoted.get(w)}` : ''}`,
            details: result.errorBeforeSearch
              ? { relRmsErrorMinMax: result.errorBeforeSearch.relRmsError, maxAbsErrorMinMax: result.errorBeforeSearch.maxAbsError }
              : undefined,
          }),
        );
      }
    } finally {
      await pool.close();
    }
    return summary;
  },
});

/**
 * Folds the BatchNormalizations that follow Convs of the main graph whose weight the pass quantizes
 * (read by that Conv alone) into them (./fold-batchnorm.ts), before the weights are quantized.
 */
function foldBeforeQuantizing(model: Model, candidates: Weight[], summary: PassSummary): void {
  const edits = new ModelEditor(model);
  const quantized = new Set(
    candidates.filter((w) => w.home === model.graph && w.uses.length === 1 && w.uses[0]!.role === 'conv').map((w) => w.uses[0]!.node),
  );
  const folded = foldBatchNorms(edits.graph(model.graph), edits.names, (conv) => quantized.has(conv));
  if (folded.length > 0)
    summary.notes.push(
      `${folded.length} BatchNormalization${folded.length === 1 ? '' : 's'} folded into the Conv before ${folded.length === 1 ? 'it' : 'each'} (W·γ/√(σ²+ε), a bias): the same function, four tensors fewer per layer; fold-batchnorm=false keeps them`,
    );
}

/**
 * Block of the blocked int8 form the weights' check falls back on, along each weight's reduction
 * axis: on the PP-OCRv4 recognizer per channel gave cosine 0.9974, blocks of 32 0.9997 (a numpy
 * emulation in ONNX Runtime, bench/RESULTS.md), at 1/32 more scales.
 */
const INT8_BLOCK = 32;

/**
 * The axis a Conv weight's uses sum over, where they agree (moved uses for a weight read through
 * moves) and it is long enough for blocks: a depthwise Conv's [C, 1, k, k] sums over one input channel, and
 * blocks along it would be single values, a scale each.
 */
function blockAxisOf(w: Weight): number | undefined {
  const uses = w.uses.length > 0 ? w.uses : w.movedUses;
  // Conv weights only: ONNX Runtime fuses a blocked int8 DequantizeLinear into the MatMul after it
  // (MatMulNBits, 8 bits), which computes otherwise than the check measured (a test model's output
  // cosine 0.10 with optimizations, 0.99999 without).
  if (!uses.every((u) => u.role === 'conv')) return undefined;
  const axes = new Set(uses.map((u) => u.reductionAxis));
  const [axis] = axes;
  if (axes.size !== 1 || axis === undefined || axis < 0) return undefined;
  return Number(w.tensor.dims[axis]) >= INT8_BLOCK ? axis : undefined;
}

/** The values blocked DequantizeLinear makes of the codes (kernels/quantize.ts perBlock's group numbering). */
function dequantizedBlocks(result: QuantizeResult, dims: number[], axis: number, block: number): Float32Array {
  const { codes, scales, zeroPoints } = result;
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const length = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const blocks = Math.ceil(length / block);
  const out = new Float32Array(codes.length);
  for (let o = 0; o < outer; o++)
    for (let k = 0; k < length; k++)
      for (let i = 0; i < inner; i++) {
        const at = (o * length + k) * inner + i;
        const g = (o * blocks + Math.floor(k / block)) * inner + i;
        out[at] = (codes[at]! - zeroPoints[g]!) * scales[g]!;
      }
  return out;
}

/** Writes a weight as blocked int8 DequantizeLinear (opset 21). */
function applyBlocks(model: Model, edits: ModelEditor, w: Weight, result: QuantizeResult, symmetric: boolean, summary: PassSummary) {
  const dims = w.tensor.dims.map(Number);
  const axis = blockAxisOf(w)!;
  const scaleDims = dims.map((d, i) => (i === axis ? Math.ceil(d / INT8_BLOCK) : d));
  const type = symmetric ? DataType.INT8 : DataType.UINT8;
  const bytesOf = (c: Int8Array | Uint8Array | Int16Array) =>
    symmetric ? new Uint8Array(Int8Array.from(c).buffer) : new Uint8Array(Uint8Array.from(c).buffer);
  const { initializers, node } = dequantizeWeight(
    w,
    edits.names,
    { dataType: type, dims, bytes: bytesOf(result.codes) },
    { dims: scaleDims, values: result.scales },
    symmetric ? undefined : { dataType: type, bytes: bytesOf(result.zeroPoints) },
    [intAttribute('axis', axis), intAttribute('block_size', INT8_BLOCK)],
  );
  replaceWeight(edits, w, initializers, [node]);
  return settleWeight(model, summary, w, initializers, {
    dtypeAfter: symmetric ? 'int8' : 'uint8',
    error: result.error,
    form: `DequantizeLinear ${symmetric ? 'int8 symmetric' : 'uint8 asymmetric'} in blocks of ${INT8_BLOCK} along axis ${axis} (per channel moved the outputs)`,
  });
}

/** A weight's new tensors settled (final: an external data file takes them now), their bytes counted in the summary, and its row there. */
function settleWeight(
  model: Model,
  summary: PassSummary,
  w: Weight,
  initializers: TensorProto[],
  row: { dtypeAfter: string; error: ErrorStats; form: string; details?: TensorChange['details'] },
): TensorChange {
  model.settle(initializers);
  const bytesBefore = tensorByteLength(w.tensor);
  const bytesAfter = initializers.reduce((n, t) => n + (t.raw_data?.byteLength ?? 0), 0);
  summary.bytesBefore += bytesBefore;
  summary.bytesAfter += bytesAfter;
  return {
    name: w.name,
    shape: w.tensor.dims.map(Number),
    dtypeBefore: dtypeName(w.tensor.data_type),
    dtypeAfter: row.dtypeAfter,
    bytesBefore,
    bytesAfter,
    ...row.error,
    form: row.form,
    details: row.details,
  };
}

/** Whether the weight and everything reading it, moved or not, are in the main graph (where the checks run the model). */
function inMainGraph(model: Model, w: Weight): boolean {
  return w.home === model.graph && w.uses.every((u) => u.graph === model.graph) && w.movedUses.every((u) => u.graph === model.graph);
}

/** How a weight's codes are laid out: their shape and the axis of their scales (undefined: one scale). */
function codeLayout(w: Weight, axis: number | undefined): { dims: number[]; axis: number | undefined } {
  const dims = w.tensor.dims.map(Number);
  return recurrentRows(w, dims, axis) ? { dims: [dims[0]! * dims[1]!, dims[2]!], axis: 0 } : { dims, axis };
}

/** The values DequantizeLinear makes of the codes: (code − zero point) · scale, in float32. */
function dequantizedValues(result: QuantizeResult, layout: { dims: number[]; axis: number | undefined }): Float32Array {
  const { codes, scales, zeroPoints } = result;
  const out = new Float32Array(codes.length);
  if (layout.axis === undefined) {
    for (let i = 0; i < codes.length; i++) out[i] = (codes[i]! - zeroPoints[0]!) * scales[0]!;
    return out;
  }
  const inner = layout.dims.slice(layout.axis + 1).reduce((a, b) => a * b, 1);
  const count = layout.dims[layout.axis]!;
  for (let i = 0; i < codes.length; i++) {
    const c = Math.floor(i / inner) % count;
    out[i] = (codes[i]! - zeroPoints[c]!) * scales[c]!;
  }
  return out;
}

/** The weight as [K, N] (a Gemm with transB stores [N, K]) and its shape. */
function matrixOf(w: Weight, dims: number[]): { transposed: boolean; K: number; N: number } {
  const transposed = w.uses[0]!.outputAxis === 0;
  if (w.uses.some((u) => (u.outputAxis === 0) !== transposed)) throw new Error(`weight ${w.name} is read both transposed and not`);
  const [K, N] = transposed ? [dims[1]!, dims[0]!] : [dims[0]!, dims[1]!];
  return { transposed, K, N };
}

/** Codes of the integer form: [K, N], a scale per column (or one for all), on the kernel pool. */
function dynamicCodes(
  w: Weight,
  pool: KernelPool,
  symmetric: boolean,
  granularity: 'channel' | 'tensor',
  ratios: number[] | undefined,
  factor: Float64Array | undefined,
  progress: JobProgress,
): Promise<QuantizeResult> {
  const { transposed, K, N } = matrixOf(w, w.tensor.dims.map(Number));
  const source = floatSource(w.tensor);
  const range = symmetric ? INT8 : UINT8;
  if (factor && !transposed && granularity === 'channel')
    return pool.run({ kind: 'gptq', values: source, k: K, n: N, factor, range, symmetric }, progress);
  let kn: Float32Array | FloatSource = source;
  if (transposed) {
    const a = toFloat32(source);
    const out = new Float32Array(a.length);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[k * N + n] = a[n * K + k]!;
    kn = out;
  }
  return pool.run(
    {
      values: kn,
      groups: granularity === 'channel' ? { kind: 'channel', dims: [K, N], axis: 1 } : { kind: 'tensor' },
      options: { range, symmetric, clipRatios: ratios },
    },
    progress,
  );
}

/** Rewrites a weight read only by MatMul / plain Gemm nodes into the integer form, from its codes. */
function applyDynamic(
  model: Model,
  edits: ModelEditor,
  w: Weight,
  result: QuantizeResult,
  dims: number[],
  symmetric: boolean,
  granularity: 'channel' | 'tensor',
  factor: Float64Array | undefined,
  summary: PassSummary,
) {
  const { transposed, K, N } = matrixOf(w, dims);
  const expand = <T extends Float32Array | Int16Array>(a: T): number[] =>
    granularity === 'channel' ? Array.from(a) : new Array<number>(N).fill(a[0]!);
  const scales = Float32Array.from(expand(result.scales));
  const zeros = symmetric ? Int8Array.from(expand(result.zeroPoints)) : Uint8Array.from(expand(result.zeroPoints));
  const codes = result.codes;
  const initializers = rewriteDynamic(edits, w, K, N, codes, scales, zeros, symmetric);
  return settleWeight(model, summary, w, initializers, {
    dtypeAfter: symmetric ? 'int8' : 'uint8',
    error: result.error,
    form: `MatMulInteger ${symmetric ? 'int8' : 'uint8'} ${granularity === 'channel' ? 'per-column' : 'per-tensor'} (dynamic${factor && !transposed && granularity === 'channel' ? ', GPTQ' : ''})`,
    details: result.errorBeforeSearch ? { relRmsErrorMinMax: result.errorBeforeSearch.relRmsError } : undefined,
  });
}
