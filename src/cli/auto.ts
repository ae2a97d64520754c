import type { Command } from 'commander';
import { writeFileAtomically } from '../io/atomic.js';
import { prestartOrtChild } from '../runtime/client.js';
import { prepareOutputs } from '../io/output-path.js';
import { stringify } from 'yaml';
import { UsageError } from '../errors.js';
import { autoPrecision, type AutoTrial } from '../pipeline/auto.js';
import { recipeData } from '../pipeline/recipe.js';
import { buildReport } from '../report/build.js';
import {
  addEvalOptions,
  addReportOptions,
  dataInputs,
  emitReport,
  reportTargets,
  evalOptionsFrom,
  gateOptionsFrom,
  type ReportFlags,
} from './report-options.js';
import { recipeEvalOf, recipeGatesOf } from './recipe-flags.js';

interface AutoFlags extends ReportFlags {
  output?: string;
  force?: boolean;
  recipeOut?: string;
  calibration?: string;
}

export function registerAuto(program: Command): void {
  const cmd = program
    .command('auto')
    .description(
      'choose per-layer precision (4-bit, 8-bit, float16-stored or float) from measured sensitivity: the smallest model whose measured accuracy drop stays within the budget',
    )
    .argument('<model>', 'an .onnx file')
    .requiredOption('-o, --output <file>', 'where to write the chosen model')
    .option('--recipe-out <file>', 'where to write the recipe it chose (default: OUTPUT.recipe.yaml)')
    .option('--force', 'overwrite the output if it exists')
    .option(
      '--calibration <data>',
      'inputs to calibrate activation ranges on (formats as --data): the layers kept at 8 bits are then computed in integers (int8:mode=static, QDQ) instead of the default int8 form',
    );
  addEvalOptions(cmd);
  addReportOptions(cmd);
  cmd.action(async (path: string, flags: AutoFlags) => {
    const gates = gateOptionsFrom(flags);
    if (gates.maxAccuracyDrop === undefined) throw new UsageError('auto: --max-accuracy-drop is required (the budget)');
    const recipePath = flags.recipeOut ?? `${flags.output}.recipe.yaml`;
    // Every file this run writes is checked (and its folder created) before the model is read.
    const outputs = [{ path: flags.output!, role: 'output' }, { path: recipePath, role: 'recipe' }, ...reportTargets(flags)];
    const calibration = flags.calibration === undefined ? [] : [flags.calibration];
    prepareOutputs(outputs, { force: flags.force ?? false, inputs: [path, ...dataInputs(flags), ...calibration] });
    const evaluate = evalOptionsFrom(flags);
    prestartOrtChild();
    const progress = process.stderr.isTTY ? (m: string) => process.stderr.write(`  ${m}\n`) : undefined;
    // With calibration data, 8 bits means static int8: the form computed in integers, measured in every trial like the others.
    const int8 = flags.calibration === undefined ? undefined : { mode: 'static', calibration: flags.calibration };
    const auto = await autoPrecision(path, flags.output!, { maxDrop: gates.maxAccuracyDrop, evaluate, progress, int8 });
    const recipe = recipeData({ passes: auto.steps, eval: recipeEvalOf(flags), gates: recipeGatesOf(gates) });
    writeFileAtomically(recipePath, Buffer.from(stringify(recipe), 'utf8'));
    const report = await buildReport({
      command: 'auto',
      reference: auto.result.model,
      referenceFiles: auto.result.input.files,
      inputParameters: auto.result.inputParameters,
      candidatePath: flags.output!,
      candidateFiles: auto.result.output.files,
      candidate: auto.result.model,
      tensors: auto.result.tensors,
      passes: auto.result.passes,
      evaluate: { ...evaluate, part: 'held-out' },
      gzip: flags.gzip,
      gates,
    });
    report.recipe = recipe;
    report.auto = {
      budget: gates.maxAccuracyDrop,
      recipe: recipePath,
      ...(flags.calibration === undefined ? {} : { int8: `static (calibration ${flags.calibration})` }),
      withinBudget: auto.withinBudget,
      sensitivity: auto.sensitivity,
      data: { chosenOn: auto.tuning.range, reportedOn: auto.tuning.other },
      trials: auto.trials.map((t, i) => ({
        bytes: t.bytes,
        drop: t.drop,
        int4: count(t.assignment, 'int4'),
        int8: count(t.assignment, 'int8'),
        fp16: count(t.assignment, 'fp16'),
        float: count(t.assignment, 'float'),
        step: stepOf(auto.trials, i, auto.sensitivity.length),
      })),
      chosen: auto.chosen.assignment,
      fellBack: auto.fellBack,
    };
    // The report says it all (budget, recipe, sensitivity, trials), in every format.
    emitReport(report, flags);
  });
}

/**
 * What trial i tried: a layer alone at 4 bits (the sensitivity trials, first), every layer at 4 bits,
 * then each layer raised, found as the one change from the trial before.
 */
function stepOf(trials: AutoTrial[], i: number, measured: number): string {
  // What was asked names the trial; what was written may differ (a layer without a 4-bit form).
  const a = trials[i]!.asked;
  if (i < measured) {
    const layer = Object.keys(a).find((l) => a[l] === 'int4') ?? '?';
    return trials[i]!.assignment[layer] === 'int4'
      ? `${layer} alone at int4`
      : `${layer} alone at int4 (not written: stays ${trials[i]!.assignment[layer]})`;
  }
  if (i === measured) return 'every layer at int4';
  const before = trials[i - 1]!.asked;
  const changed = Object.keys(a).filter((l) => a[l] !== before[l]);
  return changed.map((l) => `${l} → ${a[l]}`).join(', ') || 'unchanged';
}

function count(assignment: Record<string, string>, p: string): number {
  return Object.values(assignment).filter((v) => v === p).length;
}
