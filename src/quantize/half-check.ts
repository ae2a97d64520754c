// The measured fallback of the half-precision passes: the float32 model is run on the data with
// every float value of the main graph exposed, and a node whose inputs or outputs leave float16's
// range there keeps float32. The converted model is then run the same way, and a node whose output
// becomes inf or NaN where the float32 run's was finite keeps float32 too, until none does (a few
// rounds: keeping one node can move an overflow to the next).
import { UsageError } from '../errors.js';
import { elementTypes } from '../ir/elem-types.js';
import { FLOAT16_MAX } from '../ir/half.js';
import type { Model } from '../ir/model.js';
import type { CheckInputs } from '../pass/pass.js';
import { DataType, type NodeProto } from '../ir/onnx.js';
import { loadEvalData, type EvalData } from '../runtime/data.js';
import { checkFeeds } from '../runtime/feeds.js';
import { halfInputs, halfOpOf, halfOutputs } from './half-ops.js';
import { ProbeRunner, trialCopy, type HeldMemory } from './probe.js';
import { tensorDataBytes } from '../io/write.js';
import { applyHalf, planHalf, type HalfPlanOptions } from './half-convert.js';

/** Per value: the largest magnitude seen and whether every element was finite. */
type Ranges = Map<string, { max: number; finite: boolean }>;

const MAX_ROUNDS = 4;

function floatValues(model: Model): string[] {
  const types = elementTypes(model.graph);
  const out = new Set<string>();
  for (const n of model.graph.node)
    for (const o of n.output)
      if (o && (types.get(o) === DataType.FLOAT || types.get(o) === DataType.FLOAT16 || types.get(o) === DataType.BFLOAT16)) out.add(o);
  for (const i of model.graph.input) if (i.name && types.get(i.name) === DataType.FLOAT) out.add(i.name);
  return [...out];
}

/** Runs a model on every batch and records the range of each named value. */
async function ranges(runner: ProbeRunner, model: Model, names: string[], held?: HeldMemory): Promise<Ranges> {
  const result: Ranges = new Map();
  await runner.run(
    model,
    names,
    (batch) => {
      for (const [name, floats] of batch) {
        let max = 0,
          finite = true;
        for (let i = 0; i < floats.length; i++) {
          const v = floats[i]!;
          if (!Number.isFinite(v)) finite = false;
          else if (Math.abs(v) > max) max = Math.abs(v);
        }
        const seen = result.get(name);
        result.set(name, { max: Math.max(max, seen?.max ?? 0), finite: finite && (seen?.finite ?? true) });
      }
    },
    held,
  );
  return result;
}

/**
 * What ONNX Runtime holds of the converted trial: it folds each weight's Cast as it loads, making the
 * half weights beside a float32 copy of each (its child held 3.77 GB of its own for the 2.64 GB
 * llama-style model, and was killed in a 3 GiB cgroup: bench/RESULTS.md), so 1.5× its tensors.
 */
function heldByTrial(trial: Model): HeldMemory {
  return {
    bytes: 1.5 * tensorDataBytes(trial),
    what: "the converted trial's weights and the half-precision copies ONNX Runtime makes of them",
  };
}

export interface MeasuredKeep {
  /** Nodes kept in float32 by measurement, with the reason. */
  kept: Map<NodeProto, string>;
  /** The data it was measured on, for the report. */
  source: string;
  rounds: number;
}

/**
 * Which nodes must keep float32 on this data: those whose values leave float16's range in the
 * float32 run, then those whose output turns non-finite in the converted model.
 */
export async function measureHalf(
  model: Model,
  options: Omit<HalfPlanOptions, 'keep'> & {
    keep: HalfPlanOptions['keep'];
    keepIo: boolean;
    weightOnly: boolean;
    data?: string;
    inputs?: CheckInputs;
    seed: number;
    threads?: number;
  },
): Promise<MeasuredKeep> {
  const label = model.source?.given ?? 'the model';
  let data: EvalData;
  try {
    const given = options.data ?? options.inputs?.data;
    data = loadEvalData(model, {
      dims: options.inputs?.dims,
      shapes: given === undefined ? options.inputs?.shapes : undefined,
      data: given,
      seed: options.seed,
      batches: 2,
    });
  } catch (e) {
    // The evaluation's advice names --data; here the data comes from the pass's own options.
    if (e instanceof UsageError && options.data === undefined && options.inputs?.data === undefined)
      throw new UsageError(
        `${e.message.replace(/: give evaluation data with --data$/, '')}: give the check inputs with calibration=DATA, or convert without it (check=none)`,
      );
    throw e;
  }
  for (const batch of data.batches) checkFeeds(model, label, batch.inputs);
  const runner = new ProbeRunner(data, label, options.threads);
  const kept = new Map<NodeProto, string>();
  try {
    const reference = await ranges(runner, model, floatValues(model));
    if (options.dtype === DataType.FLOAT16) {
      for (const node of model.graph.node) {
        const op = halfOpOf(node);
        if (!op) continue;
        const values = [
          ...halfInputs(op, node.input.length).map((i) => node.input[i]!),
          ...halfOutputs(op, node.output.length).map((i) => node.output[i]!),
        ];
        const over = values.find((v) => v && (reference.get(v)?.max ?? 0) > FLOAT16_MAX);
        if (over)
          kept.set(
            node,
            `'${over}' reaches ${formatMagnitude(reference.get(over)!.max)} on ${data.source}, beyond float16's range (${FLOAT16_MAX})`,
          );
      }
    }
    let rounds = 1;
    for (; rounds <= MAX_ROUNDS; rounds++) {
      const keep = (node: NodeProto) => kept.get(node) ?? options.keep(node);
      const trial = trialCopy(model);
      const originals = new Map(trial.graph.node.map((n, i) => [n, model.graph.node[i]!]));
      const plan = planHalf(trial.graph, { ...options, keep: (n) => keep(originals.get(n) ?? n) });
      // The trial keeps float32 inputs and outputs whatever keep-io says: it runs on the same float32 data.
      applyHalf(trial, plan, {
        dtype: options.dtype,
        keepIo: true,
        minSize: options.minSize,
        weightOnly: options.weightOnly,
        conversions: options.conversions,
        // The trial reads the weights where they lie (a probe of BERT-base wrote 438 MB of converted weights).
        castWeights: true,
      });
      const watched = [...plan.moved].flatMap((n) => n.output.filter((o) => o));
      const converted = await ranges(runner, trial, watched, heldByTrial(trial));
      let added = 0;
      for (const node of plan.moved) {
        const bad = node.output.find((o) => o && converted.get(o)?.finite === false && (reference.get(o)?.finite ?? true));
        if (!bad) continue;
        kept.set(
          originals.get(node)!,
          `'${bad}' becomes inf or NaN in ${options.dtype === DataType.FLOAT16 ? 'float16' : 'bfloat16'} on ${data.source} (finite in float32)`,
        );
        added++;
      }
      if (added === 0) break;
    }
    return { kept, source: data.source, rounds: Math.min(rounds, MAX_ROUNDS) };
  } finally {
    runner.close();
  }
}

function formatMagnitude(x: number): string {
  return x >= 1e5 ? x.toExponential(2) : x.toFixed(1);
}
