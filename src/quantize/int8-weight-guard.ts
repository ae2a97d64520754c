// The fidelity guard of int8's weight-only form (issue 16): 8-bit weights are harmless for most
// layers, but a few small ones can move a model's outputs on their own — in the PP-OCRv4 detector,
// three 1×1 and depthwise convolutions of the head (12 kB of its 4.75 MB) cost more output cosine
// than the other 59 layers together. So the model is run on the check's data with every weight as
// int8 would make it; when the outputs move (cosine below GUARD_MIN_COSINE), each weight's own effect
// is measured, one weight quantized at a time, and the weights that cost the most per byte saved
// stay float32: the fewest, in that order, that bring the outputs back (found by halving).
import type { Model } from '../ir/model.js';
import { ModelEditor } from '../ir/editor.js';
import { DataType, type NodeProto } from '../ir/onnx.js';
import type { NamedArray } from '../io/testdata.js';
import { makeTensor, tensorByteLength } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import { firstSamples, type EvalBatch } from '../runtime/data.js';
import { makeNode } from '../ir/build.js';
import { GUARD_MIN_COSINE, openCheck, OutputCosines, type CheckOptions } from './int8-guard.js';
import { trialCopy } from './probe.js';

/**
 * Each weight's own cost is measured on the check's data (one run per weight), or, when its first
 * batch has more samples than this, on that many of them: the PP-OCRv4 recognizer's 46 weights on
 * all 16 lines took a minute.
 */
const RANKING_SAMPLES = 8;

/** Weights taken back to float32 one at a time, a check each, before the rest is searched by halving. */
const LINEAR_STEPS = 12;

export interface WeightGuardResult {
  /** Weights kept float32, with the reason. */
  kept: Map<Weight, string>;
  /** The lowest output cosine with every weight as int8, and with those kept float32. */
  cosineAll: number;
  cosine: number;
  source: string;
}

/**
 * A copy of the model where each weight is read through Where(switch, its int8 values, itself): every
 * mix of quantized and float weights is then one ONNX Runtime session fed other switches.
 */
function switchableWeights(model: Model, weights: Weight[], values: Map<Weight, Float32Array>) {
  const trial = trialCopy(model);
  const edits = new ModelEditor(trial);
  const graph = edits.graph(trial.graph);
  const names = edits.names;
  const switchOf = new Map<Weight, string>();
  const wheres: NodeProto[] = [];
  for (const w of weights) {
    const on = names.fresh(`${w.name}_int8_switch`),
      quantized = names.fresh(`${w.name}_int8_values`),
      switched = names.fresh(`${w.name}_switched`);
    const v = values.get(w)!;
    graph.addInitializer(
      makeTensor(quantized, DataType.FLOAT, w.tensor.dims.map(Number), new Uint8Array(v.buffer, v.byteOffset, v.byteLength)),
    );
    graph.replaceAllUses(w.name, switched, graph.readers(w.name));
    wheres.push(makeNode('Where', [on, quantized, w.name], [switched], names.fresh(`${w.name}_Where`)));
    switchOf.set(w, on);
    trial.graph.input.push({ name: on, type: { tensor_type: { elem_type: DataType.BOOL, shape: { dim: [] } } }, metadata_props: [] });
  }
  graph.insertNodes(wheres, 'start');
  return { trial, switchOf };
}

function switches(switchOf: Map<Weight, string>, on: Set<Weight>): NamedArray[] {
  return [...switchOf].map(([w, name]) => ({ name, dtype: DataType.BOOL, dims: [], data: Uint8Array.of(on.has(w) ? 1 : 0) }));
}

/**
 * Runs the model with `weights` as `values` (their int8 values, dequantized) and keeps float32 those
 * that move the outputs, as above. `codeBytes` is each weight's size as int8.
 */
export async function guardWeightOnly(
  model: Model,
  weights: Weight[],
  values: Map<Weight, Float32Array>,
  codeBytes: Map<Weight, number>,
  options: CheckOptions,
  /** false: measure only the outputs with every weight as `values` (cosineAll), keep nothing float32. */
  rank = true,
): Promise<WeightGuardResult> {
  const { data, runner } = openCheck(model, options);
  try {
    const outputs = model.graph.output.map((o) => o.name ?? '');
    const { trial, switchOf } = switchableWeights(model, weights, values);
    const session = await runner.open(trial, outputs);
    try {
      const reference: Map<string, Float32Array>[] = [];
      await session.run(switches(switchOf, new Set()), (got) => {
        reference.push(new Map(outputs.filter((o) => got.has(o)).map((o) => [o, Float32Array.from(got.get(o)!)])));
      });
      // Each weight's own cost is ranked on a few samples (one run per weight); every step is checked on all.
      const first = data.batches[0]!;
      const sample = { ...first, inputs: firstSamples(model, first.inputs, RANKING_SAMPLES) };
      const sampleReference: Map<string, Float32Array>[] = [];
      const against = (references: Map<string, Float32Array>[], quantized: Iterable<Weight>, batches?: EvalBatch[]) => async () => {
        const cosines = new OutputCosines();
        await session.run(
          switches(switchOf, new Set(quantized)),
          (got, batch) => {
            for (const [name, expected] of references[batch]!) {
              const v = got.get(name);
              if (v) cosines.add(name, v, expected);
            }
          },
          batches,
        );
        return cosines.worst();
      };
      const worstCosine = (quantized: Iterable<Weight>) => against(reference, quantized)();
      const sampleCosine = (quantized: Iterable<Weight>) => against(sampleReference, quantized, [sample])();
      const cosineAll = await worstCosine(weights);
      const kept = new Map<Weight, string>();
      if (cosineAll >= GUARD_MIN_COSINE || !rank) return { kept, cosineAll, cosine: cosineAll, source: data.source };
      // Each weight's own cost, then the most per byte saved first.
      // A large batch is sampled for the ranking (RANKING_SAMPLES), a small one used whole.
      const rankOnSample = sample.inputs !== first.inputs;
      if (rankOnSample)
        await session.run(
          switches(switchOf, new Set()),
          (got) => sampleReference.push(new Map(outputs.filter((o) => got.has(o)).map((o) => [o, Float32Array.from(got.get(o)!)]))),
          [sample],
        );
      const drop = new Map<Weight, number>();
      for (const w of weights) drop.set(w, 1 - (await (rankOnSample ? sampleCosine([w]) : worstCosine([w]))));
      const saved = (w: Weight) => Math.max(1, tensorByteLength(w.tensor) - (codeBytes.get(w) ?? 0));
      const order = [...weights].sort((a, b) => drop.get(b)! / saved(b) - drop.get(a)! / saved(a));
      // The shortest prefix of that order kept float32 that brings the outputs back: one weight more
      // per check for the first LINEAR_STEPS, then by halving what is left (the cosine grows, near
      // enough, as more weights stay float32).
      let low = 0,
        high = order.length,
        worst = 1;
      for (let k = 1; k <= Math.min(LINEAR_STEPS, order.length - 1); k++) {
        const c = await worstCosine(order.slice(k));
        if (c >= GUARD_MIN_COSINE) {
          high = k;
          worst = c;
          break;
        }
        low = k;
      }
      while (high - low > 1) {
        const middle = (low + high) >> 1;
        const c = await worstCosine(order.slice(middle));
        if (c >= GUARD_MIN_COSINE) {
          high = middle;
          worst = c;
        } else low = middle;
      }
      for (const w of order.slice(0, high)) kept.set(w, '');
      for (const w of kept.keys())
        kept.set(
          w,
          `kept float32: as int8 alone it moves the outputs to cosine ${(1 - drop.get(w)!).toFixed(6)} on the first samples of ${data.source} (every weight as int8: ${cosineAll.toFixed(6)} < ${GUARD_MIN_COSINE})`,
        );
      return { kept, cosineAll, cosine: worst, source: data.source };
    } finally {
      await session.close();
    }
  } finally {
    runner.close();
  }
}
