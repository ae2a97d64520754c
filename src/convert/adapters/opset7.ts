// Opset 6 → 7: the legacy 'broadcast'/'axis' attributes of the elementwise ops gave way to numpy
// broadcasting, and the 'is_test' flags of BatchNormalization and Dropout went away.
import type { Adapter } from '../adapter.js';
import { intsAttribute } from '../../ir/build.js';
import { attribute, intOf, makeNode, removeAttribute } from '../context.js';

/**
 * Before 7, B broadcast onto A only with broadcast=1: B's shape matched A's from `axis` on (default:
 * its trailing dimensions). Numpy broadcasting aligns trailing dimensions, so B is unsqueezed with
 * trailing 1s when it is aligned elsewhere.
 */
function legacyBroadcast(op: string): Adapter {
  return {
    op,
    version: 7,
    how: "legacy broadcast: 'broadcast'/'axis' dropped",
    apply(ctx) {
      const node = ctx.node;
      const broadcast = intOf(attribute(node, 'broadcast')) ?? 0;
      const axisAttr = attribute(node, 'axis');
      if (broadcast === 0) {
        removeAttribute(node, 'broadcast');
        removeAttribute(node, 'axis');
        return { how: 'same shapes: unchanged' };
      }
      if (axisAttr === undefined) {
        removeAttribute(node, 'broadcast');
        return;
      }
      const a = node.input[0]!,
        b = node.input[1]!;
      const rankA = ctx.rank(a),
        rankB = ctx.rank(b);
      if (rankA === undefined || rankB === undefined)
        return { refused: `broadcast with axis needs the ranks of '${a}' and '${b}', which are not known` };
      let axis = intOf(axisAttr)!;
      if (axis < 0) axis += rankA;
      const trailing = rankA - axis - rankB;
      if (axis < 0 || trailing < 0) return { refused: `axis ${intOf(axisAttr)} does not fit ranks ${rankA} and ${rankB}` };
      removeAttribute(node, 'broadcast');
      removeAttribute(node, 'axis');
      if (trailing === 0) return;
      // An Unsqueeze of opset 7's form (axes attribute): later steps convert it like any node.
      const unsqueezed = ctx.fresh(`${b}_aligned`);
      const u = makeNode('Unsqueeze', [b], [unsqueezed], ctx.fresh(`${node.name || op}_align`));
      u.attribute.push(
        intsAttribute(
          'axes',
          Array.from({ length: trailing }, (_, i) => rankB + i),
        ),
      );
      ctx.insertBefore(u);
      node.input[1] = unsqueezed;
      return { how: "legacy broadcast with axis: B unsqueezed to align, 'broadcast'/'axis' dropped" };
    },
  };
}

export const broadcast7 = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less'].map(legacyBroadcast);

export const gemm7: Adapter = {
  op: 'Gemm',
  version: 7,
  how: "'broadcast' dropped (C broadcasts from 7 on)",
  apply(ctx) {
    if (!removeAttribute(ctx.node, 'broadcast')) return { how: 'unchanged' };
  },
};

export const batchNormalization7: Adapter = {
  op: 'BatchNormalization',
  version: 7,
  how: "'is_test' dropped",
  apply(ctx) {
    const isTest = intOf(attribute(ctx.node, 'is_test')) ?? 0;
    if (isTest === 0 && ctx.node.output.slice(1).some((o) => o !== ''))
      return { refused: 'training mode (is_test=0) with statistics outputs' };
    if (!removeAttribute(ctx.node, 'is_test')) return { how: 'unchanged' };
  },
};

export const dropout7: Adapter = {
  op: 'Dropout',
  version: 7,
  how: "'is_test' dropped (inference: identity)",
  apply(ctx) {
    if (!removeAttribute(ctx.node, 'is_test')) return { how: 'unchanged' };
  },
};

function recurrent(op: string): Adapter {
  return {
    op,
    version: 7,
    how: 'unchanged',
    apply(ctx) {
      if (attribute(ctx.node, 'output_sequence')) return { refused: "'output_sequence' (removed at 7)" };
    },
  };
}

export const recurrent7 = ['GRU', 'LSTM', 'RNN'].map(recurrent);

export const prelu7: Adapter = {
  op: 'PRelu',
  version: 7,
  how: 'per-channel slope unsqueezed to broadcast from the channel axis',
  apply(ctx) {
    // Before 7 a 1-D slope applied along the channel axis (1); from 7 it broadcasts from the trailing axes.
    const x = ctx.node.input[0]!,
      slope = ctx.node.input[1]!;
    const rankX = ctx.rank(x),
      rankSlope = ctx.rank(slope);
    if (rankSlope === 0 || (rankSlope !== undefined && rankSlope === rankX)) return { how: 'unchanged' };
    if (rankX === undefined || rankSlope === undefined) return { refused: `the ranks of '${x}' and '${slope}' are not known` };
    if (rankSlope !== 1) return { refused: `a rank-${rankSlope} slope on a rank-${rankX} input` };
    if (rankX <= 2) return { how: 'unchanged' };
    const aligned = ctx.fresh(`${slope}_per_channel`);
    const u = makeNode('Unsqueeze', [slope], [aligned], ctx.fresh(`${ctx.node.name || 'PRelu'}_slope`));
    u.attribute.push(
      intsAttribute(
        'axes',
        Array.from({ length: rankX - 2 }, (_, i) => i + 1),
      ),
    );
    ctx.insertBefore(u);
    ctx.node.input[1] = aligned;
  },
};
