// The fidelity guard of int8's default form (issue 16): computing a MatMul in integers quantizes its
// input activations per tensor at run time (DynamicQuantizeLinear), which is harmless for most
// layers and ruinous for inputs of a wide dynamic range (a power spectrum before a mel filter bank
// and a log: the small energies become 0). So before a weight takes the integer form, the model is
// run on the data twice — as it is, and with those activations quantized exactly as
// DynamicQuantizeLinear will (QuantizeLinear + DequantizeLinear of its outputs) — and the model's
// outputs compared. Where they differ, the layers whose activations quantize worst go weight-only,
// one at a time, until the outputs agree.
import { UsageError } from '../errors.js';
import type { Model } from '../ir/model.js';
import type { CheckInputs } from '../pass/pass.js';
import { ModelEditor } from '../ir/editor.js';
import { DataType, type NodeProto } from '../ir/onnx.js';
import type { NamedArray } from '../io/testdata.js';
import type { Weight } from '../ir/weights.js';
import { loadEvalData, type EvalData } from '../runtime/data.js';
import { checkFeeds } from '../runtime/feeds.js';
import { ProbeRunner, trialCopy } from './probe.js';
import { makeNode } from '../ir/build.js';

/** The lowest output cosine (against the float model) the integer form may cost. */
export const GUARD_MIN_COSINE = 0.999;
/** Layers taken back to weight-only one at a time before all the rest go at once. */
const MAX_ROUNDS = 6;

export interface GuardResult {
  /** Weights whose integer form was measured harmful, with the reason (they become weight-only). */
  demoted: Map<Weight, string>;
  /** The lowest output cosine with the integer form where it stays. */
  cosine: number;
  /** Weights with uses inside subgraphs: the probe does not reach them (they keep the integer form, noted). */
  unchecked: Weight[];
  source: string;
}

/**
 * Each output's cosine against the float model's over every batch taken together, as the report's
 * "lowest output cosine" is: a wake-word head's batch is one score, whose own "cosine" is only its
 * sign (0 where int8 rounds a 1e-7 probability to 0), which had every weight kept float32.
 */
export class OutputCosines {
  private readonly sums = new Map<string, { ab: number; aa: number; bb: number }>();

  add(name: string, got: Float32Array, expected: Float32Array): void {
    let s = this.sums.get(name);
    if (!s) this.sums.set(name, (s = { ab: 0, aa: 0, bb: 0 }));
    for (let i = 0; i < expected.length; i++) {
      const x = expected[i]!,
        y = got[i]!;
      s.ab += x * y;
      s.aa += x * x;
      s.bb += y * y;
    }
  }

  /** The lowest of the outputs' cosines (1 with none). */
  worst(): number {
    let worst = 1;
    for (const { ab, aa, bb } of this.sums.values()) {
      const c = aa === 0 && bb === 0 ? 1 : aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
      worst = Math.min(worst, Number.isNaN(c) ? 0 : c);
    }
    return worst;
  }
}

/**
 * The median relative error DynamicQuantizeLinear makes on these values (uint8, the range stretched
 * to include 0): how badly a layer's input survives the integer form, used to rank layers.
 */
export function activationError(values: Float32Array): number {
  let min = 0,
    max = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const scale = (max - min) / 255;
  if (scale === 0) return 0;
  const zero = Math.min(255, Math.max(0, Math.round(-min / scale)));
  const step = Math.max(1, Math.floor(values.length / 65536));
  const errors: number[] = [];
  for (let i = 0; i < values.length; i += step) {
    const v = values[i]!;
    if (v === 0) continue;
    const q = Math.min(255, Math.max(0, Math.round(v / scale) + zero));
    errors.push(Math.abs(v - (q - zero) * scale) / Math.abs(v));
  }
  if (errors.length === 0) return 0;
  errors.sort((a, b) => a - b);
  return errors[errors.length >> 1]!;
}

/** The input activation of each use of the weight (its other input) in the main graph. */
function activationsOf(model: Model, w: Weight): string[] {
  return w.uses
    .filter((u) => u.graph === model.graph)
    .map((u) => u.node.input[u.inputIndex === 1 ? 0 : 1] ?? '')
    .filter((n) => n !== '');
}

/**
 * A copy of the model where each weight's input activations can be quantized as the integer form
 * would (DynamicQuantizeLinear then DequantizeLinear, right before the node reading them), switched
 * by a boolean scalar input per weight (Where): every variant the guard measures is then one ONNX
 * Runtime session, fed different switches, and a switch off passes the activation through unchanged.
 */
function switchableActivations(model: Model, weights: Weight[]): { trial: Model; switchOf: Map<Weight, string> } {
  const trial = trialCopy(model);
  const edits = new ModelEditor(trial);
  const graph = edits.graph(trial.graph);
  const names = edits.names;
  const byNode = new Map(model.graph.node.map((n, i) => [n, trial.graph.node[i]!]));
  const switchOf = new Map<Weight, string>();
  // Each pair right before the node reading it (where its input exists).
  const before = new Map<NodeProto, NodeProto[]>();
  for (const w of weights) {
    const on = names.fresh(`${w.name}_integer_form`);
    for (const use of w.uses) {
      const node = byNode.get(use.node);
      if (!node) continue; // a use inside a subgraph: not probed
      const index = use.inputIndex === 1 ? 0 : 1;
      const x = node.input[index]!;
      const [q, s, z, dq, y] = ['q', 'scale', 'zero', 'dq', 'switched'].map((p) => names.fresh(`${x}_${p}`)) as [
        string,
        string,
        string,
        string,
        string,
      ];
      const nodes = [
        makeNode('DynamicQuantizeLinear', [x], [q, s, z], names.fresh(`${x}_DynamicQuantizeLinear`)),
        makeNode('DequantizeLinear', [q, s, z], [dq], names.fresh(`${x}_DequantizeLinear`)),
        makeNode('Where', [on, dq, x], [y], names.fresh(`${x}_Where`)),
      ];
      before.set(node, [...(before.get(node) ?? []), ...nodes]);
      graph.setInput(node, index, y);
      switchOf.set(w, on);
    }
  }
  graph.insertBeforeEach(before);
  for (const on of new Set(switchOf.values()))
    trial.graph.input.push({ name: on, type: { tensor_type: { elem_type: DataType.BOOL, shape: { dim: [] } } }, metadata_props: [] });
  return { trial, switchOf };
}

/** The switches' values: on for the weights in `on`, off for the rest. */
function switches(switchOf: Map<Weight, string>, on: Set<Weight>): NamedArray[] {
  return [...switchOf].map(([w, name]) => ({ name, dtype: DataType.BOOL, dims: [], data: Uint8Array.of(on.has(w) ? 1 : 0) }));
}

/** What the checks run on: `calibration=` (data), else the evaluation inputs the user gave, else synthesized ones. */
export interface CheckOptions {
  data?: string;
  inputs?: CheckInputs;
  seed: number;
  /** ONNX Runtime's threads for the runs (the pass's `checkThreads`; 1 when not given). */
  threads?: number;
}

/** The data the checks run on: `calibration=` when given, else `--data`, else synthesized inputs (with `--dim`/`--shape`). */
export function checkData(model: Model, options: CheckOptions): EvalData {
  const data = options.data ?? options.inputs?.data;
  try {
    return loadEvalData(model, {
      dims: options.inputs?.dims,
      shapes: data === undefined ? options.inputs?.shapes : undefined,
      data,
      seed: options.seed,
      batches: 2,
    });
  } catch (e) {
    if (e instanceof UsageError && data === undefined) {
      throw new UsageError(
        `${e.message.replace(/: give evaluation data with --data$/, '')}: give the check inputs with calibration=DATA, or choose the form yourself (mode=weight or mode=dynamic)`,
      );
    }
    throw e;
  }
}

/** The check's data, its feeds checked against the model, and a runner of the model's variants on it. */
export function openCheck(model: Model, options: CheckOptions): { data: EvalData; runner: ProbeRunner } {
  const label = model.source?.given ?? 'the model';
  const data = checkData(model, options);
  for (const batch of data.batches) checkFeeds(model, label, batch.inputs);
  return { data, runner: new ProbeRunner(data, label, options.threads) };
}

/**
 * The lowest output cosine of a variant of the model (`build` rewrites a trial copy) against the
 * model itself, on the check's data: for forms whose effect cannot be emulated by fake quantization
 * (the integer LSTM quantizes its hidden state inside the op).
 */
export async function trialCosine(
  model: Model,
  build: (trial: Model) => void,
  options: CheckOptions,
): Promise<{ cosine: number; source: string }> {
  const { data, runner } = openCheck(model, options);
  try {
    const outputs = model.graph.output.map((o) => o.name ?? '');
    const reference: Map<string, Float32Array>[] = [];
    await runner.run(model, outputs, (values) => reference.push(new Map([...values].map(([k, v]) => [k, Float32Array.from(v)]))));
    const trial = trialCopy(model);
    build(trial);
    const cosines = new OutputCosines();
    await runner.run(trial, outputs, (values, batch) => {
      for (const [name, expected] of reference[batch]!) {
        const got = values.get(name);
        if (got) cosines.add(name, got, expected);
      }
    });
    return { cosine: cosines.worst(), source: data.source };
  } finally {
    runner.close();
  }
}

/** Runs the float model and the model with the integer form's activation quantization; demotes what breaks it. */
export async function guardIntegerForm(model: Model, candidates: Weight[], options: CheckOptions): Promise<GuardResult> {
  const { data, runner } = openCheck(model, options);
  try {
    const outputs = model.graph.output.map((o) => o.name ?? '');
    const activations = [...new Set(candidates.flatMap((w) => activationsOf(model, w)))];
    const reference: Map<string, Float32Array>[] = [];
    const spread = new Map<string, number>();
    const checked = candidates.filter((w) => w.uses.every((u) => u.graph === model.graph));
    const unchecked = candidates.filter((w) => !checked.includes(w));
    const { trial, switchOf } = switchableActivations(model, checked);
    const session = await runner.open(trial, [...outputs, ...activations]);
    try {
      // Every switch off: the float model.
      await session.run(switches(switchOf, new Set()), (values) => {
        reference.push(new Map(outputs.filter((o) => values.has(o)).map((o) => [o, Float32Array.from(values.get(o)!)])));
        for (const a of activations) {
          const v = values.get(a);
          if (v) spread.set(a, Math.max(spread.get(a) ?? 0, activationError(v)));
        }
      });
      const errorOf = (w: Weight) => Math.max(0, ...activationsOf(model, w).map((a) => spread.get(a) ?? 0));
      const worstCosine = async (weights: Weight[]): Promise<number> => {
        const cosines = new OutputCosines();
        await session.run(switches(switchOf, new Set(weights)), (values, batch) => {
          for (const [name, expected] of reference[batch]!) {
            const got = values.get(name);
            if (got) cosines.add(name, got, expected);
          }
        });
        return cosines.worst();
      };
      const demoted = new Map<Weight, string>();
      let kept = [...checked].sort((a, b) => errorOf(b) - errorOf(a));
      let worst = await worstCosine(kept);
      const why = (w: Weight, c: number) =>
        `the integer form quantizes its input to a median error of ${(100 * errorOf(w)).toFixed(1)} %: output cosine ${c.toFixed(6)} < ${GUARD_MIN_COSINE} on ${data.source} (weight-only instead)`;
      for (let round = 0; worst < GUARD_MIN_COSINE && kept.length > 0; round++) {
        if (round >= MAX_ROUNDS) {
          for (const w of kept) demoted.set(w, why(w, worst));
          kept = [];
          break;
        }
        const [first, ...rest] = kept;
        demoted.set(first!, why(first!, worst));
        kept = rest;
        worst = kept.length > 0 ? await worstCosine(kept) : 1;
      }
      return { demoted, cosine: worst, source: data.source, unchecked };
    } finally {
      await session.close();
    }
  } finally {
    runner.close();
  }
}
