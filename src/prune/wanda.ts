// Wanda (Sun et al., 2023): unstructured or N:M pruning by |W| · ‖X‖₂ per input feature, compared
// within each output, measured on calibration data in one ONNX Runtime run. No weight is updated.
import type { Model } from '../ir/model.js';
import { floatSource } from '../ir/tensor.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { calibrationProblem } from '../runtime/calibrate.js';
import {
  CALIBRATED_OPTIONS,
  calibratedProblem,
  chooseLayers,
  globalFractions,
  type Layer,
  measureLayers,
  patternOf,
  pruneLayers,
} from './calibrated.js';

export const wandaPass = definePass({
  family: 'prune',
  method: 'wanda',
  description:
    "Wanda: the weights with the smallest |W|·‖X‖ (X: the layer's inputs on calibration data) become zero, compared within each output",
  options: {
    ...CALIBRATED_OPTIONS,
    compare: {
      type: 'enum',
      choices: ['layer', 'output'],
      default: 'layer',
      description:
        "where scores compete: layer (the layer's lowest scores, chosen on the char LM's calibration split) or output (each output's own inputs, as Sun et al.); N:M compares within each group",
    },
  },
  validate: (options) => calibratedProblem(options) ?? calibrationProblem(options),
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    const pattern = patternOf(options);
    const chosen = chooseLayers(model, options, summary);
    const calibration = await measureLayers(model, chosen, 'norms', options.calibration!, context.progress, context.threads);
    const norms = new Map<Layer, Float64Array>();
    const layers = chosen.filter((l) => {
      const stats = l.inputs.map((name) => calibration.norms.get(name));
      if (stats.some((s) => s?.k !== l.k)) {
        summary.skipped.push({ name: l.w.name, reason: `its input is not a float value of ${l.k} features on the calibration data` });
        return false;
      }
      const norm = new Float64Array(l.k);
      for (const s of stats) for (let i = 0; i < l.k; i++) norm[i]! += s!.sumSq[i]!;
      for (let i = 0; i < l.k; i++) norm[i] = Math.sqrt(norm[i]!);
      norms.set(l, norm);
      return true;
    });
    const rows = Math.min(...layers.map((l) => l.inputs.reduce((r, name) => r + calibration.norms.get(name)!.rows, 0)));
    summary.notes.push(
      `Wanda on ${layers.length} layers, calibrated on ${calibration.samples} samples${layers.length ? ` (${rows} rows)` : ''} from ${calibration.source}`,
    );
    const global =
      options.scope === 'global' && !pattern.nm
        ? globalFractions(layers, norms, pattern.sparsity, options['max-layer-sparsity'])
        : undefined;
    if (global) summary.notes.push(global.note);
    const what = pattern.nm ? `${pattern.nm.n}:${pattern.nm.m}` : `${options.scope}, compared per ${options.compare}`;
    await pruneLayers(
      model,
      layers,
      (l, pool, progress) =>
        pool.run(
          {
            kind: 'wanda',
            values: floatSource(l.w.tensor),
            k: l.k,
            n: l.n,
            transposed: l.transposed,
            norms: norms.get(l)!,
            compare: options.compare,
            sparsity: global?.fractions.get(l) ?? pattern.sparsity,
            nm: pattern.nm,
          },
          progress,
        ),
      options,
      context,
      summary,
      () => ({ form: `wanda-pruned (${what})` }),
      'wanda',
    );
    return summary;
  },
});
