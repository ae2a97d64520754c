// Adapters where attributes became inputs: Clip 11, Pad 11, Slice 10, TopK 10, ReduceSum 13 and
// the other reductions 18, Split 13, Squeeze/Unsqueeze 13, Dropout 12, Upsample 9.
import { DataType } from '../../ir/onnx.js';
import type { Adapter } from '../adapter.js';
import { intAttribute } from '../../ir/build.js';
import { attribute, removeAttribute, stringOf, type AdapterContext } from '../context.js';
import { dtypeName } from '../../ir/dtype.js';

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16]);

/** The input's float element type (the old ops took float16/float/double only), or a refusal. */
function floatTypeOf(ctx: AdapterContext, name: string): number | string {
  const type = ctx.elemType(name);
  if (type === undefined) return `the element type of '${name}' is not known (declare it in value_info)`;
  if (!FLOAT_TYPES.has(type)) return `'${name}' is ${dtypeName(type)}, not a float type`;
  return type;
}

/** Puts `name` at input `index`, filling skipped optional inputs with ''. */
function setInput(ctx: AdapterContext, index: number, name: string): void {
  const inputs = ctx.node.input;
  while (inputs.length < index) inputs.push('');
  inputs[index] = name;
}

/** An ints attribute moved to an int64 input at `index` (absent attribute: input left out). */
function intsToInput(ctx: AdapterContext, attr: string, index: number): boolean {
  const a = removeAttribute(ctx.node, attr);
  if (!a) return false;
  setInput(ctx, index, ctx.constant(attr, DataType.INT64, [a.ints.length], a.ints));
  return true;
}

function trimInputs(ctx: AdapterContext): void {
  while (ctx.node.input.length > 0 && ctx.node.input[ctx.node.input.length - 1] === '') ctx.node.input.pop();
}

export const clip11: Adapter = {
  op: 'Clip',
  version: 11,
  how: 'min/max attributes to inputs',
  apply(ctx) {
    const min = attribute(ctx.node, 'min'),
      max = attribute(ctx.node, 'max');
    if (min || max) {
      const type = floatTypeOf(ctx, ctx.node.input[0]!);
      if (typeof type === 'string') return { refused: type };
      removeAttribute(ctx.node, 'min');
      removeAttribute(ctx.node, 'max');
      ctx.node.input.length = 1;
      if (min) setInput(ctx, 1, ctx.constant('min', type, [], [min.f ?? 0]));
      if (max) setInput(ctx, 2, ctx.constant('max', type, [], [max.f ?? 0]));
    }
  },
};

export const pad11: Adapter = {
  op: 'Pad',
  version: 11,
  how: 'pads/value attributes to inputs',
  apply(ctx) {
    const pads = attribute(ctx.node, 'pads');
    if (!pads) return { refused: "it has no 'pads' attribute" };
    const value = attribute(ctx.node, 'value');
    const mode = stringOf(attribute(ctx.node, 'mode')) ?? 'constant';
    const needValue = value && (value.f ?? 0) !== 0 && mode === 'constant';
    let type: number | string = DataType.FLOAT;
    if (needValue) {
      type = floatTypeOf(ctx, ctx.node.input[0]!);
      if (typeof type === 'string') return { refused: type };
    }
    intsToInput(ctx, 'pads', 1);
    removeAttribute(ctx.node, 'value');
    if (needValue) setInput(ctx, 2, ctx.constant('value', type, [], [value!.f ?? 0]));
  },
};

export const slice10: Adapter = {
  op: 'Slice',
  version: 10,
  how: 'starts/ends/axes attributes to inputs',
  apply(ctx) {
    if (!attribute(ctx.node, 'starts') || !attribute(ctx.node, 'ends')) return { refused: "it lacks 'starts' or 'ends'" };
    ctx.node.input.length = 1;
    intsToInput(ctx, 'starts', 1);
    intsToInput(ctx, 'ends', 2);
    intsToInput(ctx, 'axes', 3);
  },
};

export const topk10: Adapter = {
  op: 'TopK',
  version: 10,
  how: 'k attribute to input',
  apply(ctx) {
    const k = removeAttribute(ctx.node, 'k');
    if (!k || k.i === undefined) return { refused: "it has no 'k' attribute" };
    ctx.node.input.length = 1;
    setInput(ctx, 1, ctx.constant('k', DataType.INT64, [1], [k.i]));
  },
};

/** Reductions whose axes attribute became an input (ReduceSum at 13, the others at 18). */
function reduceAxes(op: string, version: number): Adapter {
  return {
    op,
    version,
    how: 'axes attribute to input',
    apply(ctx) {
      ctx.node.input.length = 1;
      if (!intsToInput(ctx, 'axes', 1)) return { how: 'no axes (all reduced): unchanged' };
    },
  };
}

export const reduceSum13 = reduceAxes('ReduceSum', 13);
export const reduce18 = [
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceMax',
  'ReduceMean',
  'ReduceMin',
  'ReduceProd',
  'ReduceSumSquare',
].map((op) => reduceAxes(op, 18));

export const split13: Adapter = {
  op: 'Split',
  version: 13,
  how: 'split attribute to input',
  apply(ctx) {
    ctx.node.input.length = 1;
    if (!intsToInput(ctx, 'split', 1)) return { how: 'equal parts: unchanged' };
  },
};

export const split18: Adapter = {
  op: 'Split',
  version: 18,
  how: 'equal parts: num_outputs attribute set',
  apply(ctx) {
    if (ctx.node.input[1]) return { how: 'split input given: unchanged' };
    // Split-13 without 'split' made as many equal parts as it has outputs; 18 wants num_outputs.
    ctx.node.attribute.push(intAttribute('num_outputs', ctx.node.output.length));
  },
};

function axesToInput(op: string): Adapter {
  return {
    op,
    version: 13,
    how: 'axes attribute to input',
    apply(ctx) {
      ctx.node.input.length = 1;
      if (!intsToInput(ctx, 'axes', 1)) {
        if (op === 'Unsqueeze') return { refused: "it has no 'axes' attribute" };
        return { how: 'no axes (every 1 removed): unchanged' };
      }
    },
  };
}

export const squeeze13 = axesToInput('Squeeze');
export const unsqueeze13 = axesToInput('Unsqueeze');

export const dropout12: Adapter = {
  op: 'Dropout',
  version: 12,
  how: 'ratio attribute to input',
  apply(ctx) {
    const ratio = removeAttribute(ctx.node, 'ratio');
    ctx.node.input.length = 1;
    if (ratio) setInput(ctx, 1, ctx.constant('ratio', DataType.FLOAT, [], [ratio.f ?? 0.5]));
    else return { how: 'default ratio: unchanged' };
  },
};

export const upsample9: Adapter = {
  op: 'Upsample',
  version: 9,
  how: 'scales attribute to input',
  apply(ctx) {
    const scales = removeAttribute(ctx.node, 'scales');
    if (!scales) return { refused: "it has no 'scales' attribute" };
    ctx.node.input.length = 1;
    setInput(ctx, 1, ctx.constant('scales', DataType.FLOAT, [scales.floats.length], scales.floats));
    trimInputs(ctx);
  },
};
