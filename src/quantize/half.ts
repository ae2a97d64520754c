// Half precision (--quantize fp16, --quantize bf16): float32 weights and compute move to float16 or
// bfloat16 wherever ONNX Runtime's CPU provider runs the op in that type, with Casts where moved and
// unmoved parts meet. With `check=measure` (the default) the model is first run on the data and
// nodes whose values overflow float16, or turn inf/NaN once converted, keep float32 (half-check.ts).
import { dtypeName } from '../ir/dtype.js';
import { opsetVersion } from '../ir/opset.js';
import type { Model } from '../ir/model.js';
import { DataType, type NodeProto } from '../ir/onnx.js';
import { numElements } from '../ir/tensor.js';
import { elementTypes } from '../ir/elem-types.js';
import { selectionOptions } from '../pass/options.js';
import { definePass, emptySummary, type PassSummary } from '../pass/pass.js';
import { optionFilter } from '../pass/select.js';
import { calibrationProblem } from '../runtime/calibrate.js';
import { HalfConversions, WEIGHT_ONLY_MIN_ELEMENTS, applyHalf, planHalf, type HalfType } from './half-convert.js';
import { measureHalf } from './half-check.js';
import { checkAdvice, uncheckable } from './probe.js';

/** Ops kept in float32 unless asked: those float16 converters are known to break (ONNX Runtime's float16.py block list). */
const DEFAULT_BLOCK = 'Resize,Upsample,Range,CumSum,TopK,NonMaxSuppression,RoiAlign,RandomNormal,RandomUniform';

function halfPass(method: 'fp16' | 'bf16', dtype: HalfType) {
  const typeName = dtype === DataType.FLOAT16 ? 'float16' : 'bfloat16';
  return definePass({
    family: 'quantize',
    method,
    description: `half precision: float32 weights and compute become ${typeName} where ONNX Runtime's CPU provider runs the op in ${typeName}, with Casts where the rest meets them; nodes whose values overflow on the data keep float32 (check=measure)`,
    options: {
      'keep-io': { type: 'boolean', default: true, description: 'graph inputs and outputs keep float32 (Casts at the boundary)' },
      'weight-only': {
        type: 'boolean',
        default: true,
        description: `weights of at least ${WEIGHT_ONLY_MIN_ELEMENTS} elements read only by nodes that keep float32 are stored in ${typeName} and Cast back to float32 (a smaller file; the compute stays float32)`,
      },
      block: { type: 'string', default: DEFAULT_BLOCK, description: 'op types kept in float32 (separated by , or |)' },
      check: {
        type: 'enum',
        choices: ['measure', 'none'],
        default: 'measure',
        description: `measure: run the model on the calibration data (or synthesized inputs) and keep in float32 the nodes whose values leave ${typeName}'s range or become inf/NaN once converted; none: convert without running anything`,
      },
      calibration: {
        type: 'string',
        description:
          'inputs the check runs on (a test_data_set folder, .npz, .npy or .pb, like --data); default: synthesized from the input types',
      },
      ...selectionOptions(0),
    },
    validate(options) {
      if (options.check === 'none' && options.calibration !== undefined) return 'calibration is only read by check=measure';
      return calibrationProblem(options);
    },
    async run(model: Model, options, context): Promise<PassSummary> {
      const summary = emptySummary(this, options);
      const types = elementTypes(model.graph);
      const already = model.graph.initializer.filter((t) => t.data_type === dtype).length;
      const floats = [...types.values()].filter((t) => t === DataType.FLOAT).length;
      if (floats === 0) {
        summary.skipped.push({
          name: model.source?.given ?? 'the model',
          reason: already > 0 ? `already ${typeName}: no float32 values to convert` : 'no float32 values to convert',
        });
        return summary;
      }
      const blocked = new Set(
        options.block
          .split(/[,|]/)
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      );
      // include/exclude match a node by its name and its outputs' (min-size is about initializers: applyHalf).
      const chosen = optionFilter({ ...options, 'min-size': 0 });
      const keep = (node: NodeProto): string | undefined => {
        if (blocked.has(node.op_type ?? '')) return `${node.op_type} is in block (kept in float32)`;
        return chosen(
          [node.name ?? '', ...node.output].filter((n) => n !== ''),
          0,
        );
      };
      const minSize = options['min-size'];
      const opset = opsetVersion(model.proto, '') ?? 1;
      const conversions = new HalfConversions(dtype, context.deferConversions === true);
      let measured: Awaited<ReturnType<typeof measureHalf>> | undefined;
      if (options.check === 'measure') {
        try {
          measured = await measureHalf(model, {
            dtype,
            opset,
            conversions,
            keep,
            minSize,
            keepIo: options['keep-io'],
            weightOnly: options['weight-only'],
            data: options.calibration,
            inputs: context.inputs,
            seed: context.seed,
            threads: context.checkThreads,
          });
        } catch (e) {
          summary.notes.push(
            `not measured: the model could not be run for the check, so it is converted without it, as check=none (${checkAdvice(e)}): ${uncheckable(e)}`,
          );
        }
      }
      // The element types found above serve the plan and the rewrite: nothing has edited the graph since
      // (the check runs copies of it), and finding them takes ~10 ms on BERT-base each time.
      const plan = planHalf(model.graph, { dtype, opset, conversions, minSize, types, keep: (n) => measured?.kept.get(n) ?? keep(n) });
      const result = applyHalf(model, plan, {
        dtype,
        keepIo: options['keep-io'],
        minSize,
        weightOnly: options['weight-only'],
        // A weight stored half for readers that keep float32 is matched as every pass matches a
        // weight: by its own name and its readers' (so exclude=NODE leaves NODE's weight float32 too).
        weightChosen: (names) => chosen(names, 0) === undefined,
        conversions,
        types,
      });
      for (const { before, after, error } of result.converted) {
        const bytesBefore = numElements(before.dims) * 4,
          bytesAfter = numElements(after.dims) * 2;
        summary.bytesBefore += bytesBefore;
        summary.bytesAfter += bytesAfter;
        // The error is read when the report is made: a conversion left to the writer has run by then.
        summary.tensors.push({
          name: before.name ?? '',
          shape: before.dims.map(Number),
          dtypeBefore: dtypeName(before.data_type),
          dtypeAfter: typeName,
          bytesBefore,
          bytesAfter,
          get maxAbsError() {
            return error()?.maxAbsError;
          },
          get relRmsError() {
            return error()?.relRmsError;
          },
          form: after.name === before.name ? typeName : `${typeName}, Cast to float32 (its readers keep float32)`,
        });
      }
      for (const { node, reason } of plan.kept) {
        const chosen = reason === 'does not match include pattern' || reason === 'matches exclude pattern';
        summary.skipped.push({ name: node.name || `${node.op_type} → ${node.output[0] ?? ''}`, reason, ...(chosen ? { chosen } : {}) });
      }
      const nodes = plan.moved.size + plan.kept.length;
      summary.notes.push(
        `${plan.moved.size} of ${nodes} nodes with float32 values compute in ${typeName}; ${result.casts} Cast${result.casts === 1 ? '' : 's'} added`,
      );
      if (measured) {
        const count = measured.kept.size;
        summary.notes.push(`measured on ${measured.source}: ${count} node${count === 1 ? '' : 's'} kept in float32 for range or inf/NaN`);
      }
      if (already > 0) summary.notes.push(`${already} initializer${already === 1 ? ' was' : 's were'} already ${typeName}`);
      return summary;
    },
  });
}

export const fp16Pass = halfPass('fp16', DataType.FLOAT16);
export const bf16Pass = halfPass('bf16', DataType.BFLOAT16);
