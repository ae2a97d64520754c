// Adapters where an op's meaning or name changed: Softmax/LogSoftmax/Hardmax 13 (no more coercion to
// 2-D), Upsample 10 (→ Resize), Resize 11 (roi input, coordinate modes), BatchNormalization 9 and
// 14, Dropout 10 (boolean mask), Scatter 11 (→ ScatterElements), RoiAlign 16, GridSample 20.
import type { Adapter } from '../adapter.js';
import { attribute, intOf, makeNode, removeAttribute, setIntAttribute, setStringAttribute, stringOf } from '../context.js';
import { DataType } from '../../ir/onnx.js';

/**
 * Before 13 these ops flattened their input to 2-D at `axis` (default 1) and worked along the
 * second dimension; from 13 they work along one axis (default -1). Where the old axis is the last
 * one the two agree and the axis is written out; else Flatten, the op on axis 1, then Reshape back.
 */
function coerced(op: string): Adapter {
  return {
    op,
    version: 13,
    how: 'old 2-D coercion kept with Flatten+Reshape',
    apply(ctx) {
      const node = ctx.node;
      const axis = intOf(attribute(node, 'axis')) ?? 1;
      const x = node.input[0]!;
      const rank = ctx.rank(x);
      if (axis === -1 || (rank !== undefined && (axis === rank - 1 || (axis < 0 && axis + rank === rank - 1)))) {
        setIntAttribute(node, 'axis', -1);
        return { how: 'axis is the last: made explicit' };
      }
      const base = node.output[0] || node.name || op;
      const shape = ctx.fresh(`${base}_shape`),
        flat = ctx.fresh(`${base}_2d`),
        out2d = ctx.fresh(`${base}_${op}_2d`);
      ctx.insertBefore(makeNode('Shape', [x], [shape], ctx.fresh(`${base}_Shape`)));
      const flatten = makeNode('Flatten', [x], [flat], ctx.fresh(`${base}_Flatten`));
      setIntAttribute(flatten, 'axis', axis);
      ctx.insertBefore(flatten);
      const y = node.output[0]!;
      node.input[0] = flat;
      node.output[0] = out2d;
      setIntAttribute(node, 'axis', 1);
      // The Reshape back takes the op's output name, after the op.
      ctx.insertAfter(makeNode('Reshape', [out2d, shape], [y], ctx.fresh(`${base}_Reshape`)));
    },
  };
}

export const softmax13 = coerced('Softmax');
export const logSoftmax13 = coerced('LogSoftmax');
export const hardmax13 = coerced('Hardmax');

export const upsample10: Adapter = {
  op: 'Upsample',
  version: 10,
  how: 'replaced by Resize (same inputs and meaning)',
  apply(ctx) {
    // Upsample-9 and Resize-10 take the same inputs (X, scales) and attribute (mode) with the same meaning.
    const mode = stringOf(attribute(ctx.node, 'mode')) ?? 'nearest';
    if (mode !== 'nearest' && mode !== 'linear') return { refused: `mode '${mode}'` };
    ctx.node.op_type = 'Resize';
  },
};

export const resize11: Adapter = {
  op: 'Resize',
  version: 11,
  how: 'roi input added, asymmetric coordinates and floor rounding made explicit',
  apply(ctx) {
    const node = ctx.node;
    const mode = stringOf(attribute(node, 'mode')) ?? 'nearest';
    if (mode !== 'nearest' && mode !== 'linear') return { refused: `mode '${mode}'` };
    // Resize-10 mapped output to input coordinates as x / scale (11's 'asymmetric'), and nearest took the floor.
    const scales = node.input[1] ?? '';
    node.input = [node.input[0]!, ctx.constant('roi', DataType.FLOAT, [0], []), scales];
    setStringAttribute(node, 'coordinate_transformation_mode', 'asymmetric');
    if (mode === 'nearest') setStringAttribute(node, 'nearest_mode', 'floor');
  },
};

export const batchNormalization9: Adapter = {
  op: 'BatchNormalization',
  version: 9,
  how: "'spatial' attribute dropped",
  apply(ctx) {
    const spatial = intOf(attribute(ctx.node, 'spatial')) ?? 1;
    if (spatial !== 1) return { refused: 'spatial=0 (per-activation statistics) has no equivalent at opset 9' };
    if (removeAttribute(ctx.node, 'spatial') === undefined) return { how: 'unchanged' };
  },
};

export const batchNormalization14: Adapter = {
  op: 'BatchNormalization',
  version: 14,
  how: 'inference form: unchanged',
  apply(ctx) {
    // 14 added training_mode (default 0, inference), where the optional training outputs must be absent;
    // unread ones are dropped, read ones refused (they mean something else now).
    const extra = ctx.node.output.slice(1).filter((o) => o !== '');
    if (extra.length === 0) return;
    const read = extra.find((o) => ctx.isUsed(o));
    if (read) return { refused: `its training output '${read}' is read, and these outputs changed meaning at 14` };
    ctx.node.output.length = 1;
    return { how: 'unread training outputs dropped' };
  },
};

export const dropout10: Adapter = {
  op: 'Dropout',
  version: 10,
  how: 'unchanged',
  apply(ctx) {
    const mask = ctx.node.output[1];
    if (mask === undefined || mask === '') return;
    // The mask became boolean at 10; an unread mask is dropped.
    if (ctx.isUsed(mask)) return { refused: `its mask output '${mask}' is read, and the mask became boolean at 10` };
    ctx.node.output.length = 1;
    return { how: 'unread mask output dropped (it became boolean)' };
  },
};

export const scatter11: Adapter = {
  op: 'Scatter',
  version: 11,
  how: 'replaced by ScatterElements (same meaning)',
  apply(ctx) {
    ctx.node.op_type = 'ScatterElements';
  },
};

export const roiAlign16: Adapter = {
  op: 'RoiAlign',
  version: 16,
  how: "coordinate_transformation_mode='output_half_pixel' (the old behaviour) made explicit",
  apply(ctx) {
    setStringAttribute(ctx.node, 'coordinate_transformation_mode', 'output_half_pixel');
  },
};

export const gridSample20: Adapter = {
  op: 'GridSample',
  version: 20,
  how: 'mode renamed (bilinear→linear, bicubic→cubic)',
  apply(ctx) {
    const mode = stringOf(attribute(ctx.node, 'mode')) ?? 'bilinear';
    const renamed: Record<string, string> = { bilinear: 'linear', bicubic: 'cubic', nearest: 'nearest' };
    if (!renamed[mode]) return { refused: `mode '${mode}'` };
    setStringAttribute(ctx.node, 'mode', renamed[mode]);
  },
};

export const dft20: Adapter = {
  op: 'DFT',
  version: 20,
  how: 'axis attribute to input',
  apply(ctx) {
    // DFT-17's axis attribute (default 1) counts from the front as 20's axis input does; 20's default is -2.
    const axis = removeAttribute(ctx.node, 'axis');
    const inputs = ctx.node.input;
    while (inputs.length < 2) inputs.push('');
    inputs.length = 2;
    inputs.push(ctx.constant('axis', DataType.INT64, [], [axis?.i ?? 1]));
  },
};

export const convTranspose11: Adapter = {
  op: 'ConvTranspose',
  version: 11,
  how: 'unchanged (explicit pads)',
  apply(ctx) {
    // 11 rewrote how SAME_UPPER/SAME_LOWER split an odd total padding; explicit pads mean the same.
    const autoPad = stringOf(attribute(ctx.node, 'auto_pad')) ?? 'NOTSET';
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER')
      return { refused: `auto_pad=${autoPad}, whose padding split was redefined at 11` };
    return { how: 'unchanged' };
  },
};

export const groupNormalization21: Adapter = {
  op: 'GroupNormalization',
  version: 21,
  how: 'per-group scale and bias repeated per channel',
  apply(ctx) {
    // 18 took one scale and bias per group, 21 one per channel: each group's value is repeated over
    // its C/num_groups channels (groups are contiguous), with C read from the input's shape.
    const node = ctx.node;
    const groups = intOf(attribute(node, 'num_groups'));
    if (groups === undefined) return { refused: "it has no 'num_groups'" };
    const [x, scale, bias] = node.input as [string, string, string];
    const base = node.output[0] || node.name || 'GroupNormalization';
    const channels = ctx.fresh(`${base}_channels`);
    const shape = makeNode('Shape', [x], [channels], ctx.fresh(`${base}_Shape`));
    setIntAttribute(shape, 'start', 1);
    setIntAttribute(shape, 'end', 2);
    ctx.insertBefore(shape);
    const g = ctx.constant('groups', DataType.INT64, [1], [groups]);
    const per = ctx.fresh(`${base}_per_group`);
    ctx.insertBefore(makeNode('Div', [channels, g], [per], ctx.fresh(`${base}_Div`)));
    const grid = ctx.fresh(`${base}_grid`);
    const concat = makeNode('Concat', [g, per], [grid], ctx.fresh(`${base}_Concat`));
    setIntAttribute(concat, 'axis', 0);
    ctx.insertBefore(concat);
    const one = ctx.constant('axis1', DataType.INT64, [1], [1]);
    const flat = ctx.constant('flat', DataType.INT64, [1], [-1]);
    const repeat = (name: string, what: string) => {
      const col = ctx.fresh(`${name}_column`),
        wide = ctx.fresh(`${name}_by_group`),
        out = ctx.fresh(`${name}_per_channel`);
      ctx.insertBefore(makeNode('Unsqueeze', [name, one], [col], ctx.fresh(`${base}_${what}_Unsqueeze`)));
      ctx.insertBefore(makeNode('Expand', [col, grid], [wide], ctx.fresh(`${base}_${what}_Expand`)));
      ctx.insertBefore(makeNode('Reshape', [wide, flat], [out], ctx.fresh(`${base}_${what}_Reshape`)));
      return out;
    };
    node.input = [x, repeat(scale, 'scale'), repeat(bias, 'bias')];
  },
};
