// Near-duplicate sharing (--share near): weights of the same shape and the same role in different
// layers (every block's query projection, every FFN) are grouped when each member would differ from
// the group's shared tensor by less than the tolerance, relative to its own norm; each group is
// then stored once and every member's readers read it.
//
// The shared tensor is a member or the members' mean, whichever gives the members the smallest sum
// of squared relative weight errors. That is a proxy for output error: measuring the output would
// take an ONNX Runtime run per candidate per group.
import { DataType, type GraphProto } from '../ir/onnx.js';
import type { Model } from '../ir/model.js';
import { ModelEditor } from '../ir/editor.js';
import { floatValues, makeTensor, tensorByteLength, toNumber } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import { selectionOptions } from '../pass/options.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { chooseWeights } from '../pass/select.js';
import { sparsity, weightError } from '../kernels/weight-error.js';
import { gramMatrix, planGroups, type Bound } from './group.js';
import { chooseRepresentative, type Representative, type RepresentativeMode } from './represent.js';
import { roleOf } from './roles.js';
import { dropStorage } from './stored.js';

const DEFAULT_OPS = 'MatMul,Gemm,Conv,ConvTranspose,Gather';

interface Candidate {
  weight: Weight;
  values: Float32Array;
}

/** Candidates that could share: same graph, dtype, shape and (unless grouping by shape) role. */
function candidateSets(weights: Candidate[], byRole: boolean): Map<string, Candidate[]> {
  const graphs = new Map<GraphProto, number>();
  const sets = new Map<string, Candidate[]>();
  for (const c of weights) {
    const w = c.weight;
    if (!graphs.has(w.home)) graphs.set(w.home, graphs.size);
    const key = `${graphs.get(w.home)}|${w.tensor.data_type}|${w.tensor.dims.map(toNumber).join('×')}|${byRole ? roleOf(w) : ''}`;
    const list = sets.get(key);
    if (list) list.push(c);
    else sets.set(key, [c]);
  }
  return sets;
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : String(x));

export const nearPass = definePass({
  family: 'share',
  method: 'near',
  description:
    'near-duplicate sharing: same-shape weights of the same role whose relative difference is under a tolerance are replaced by one shared tensor (a member or their mean)',
  options: {
    tolerance: {
      type: 'number',
      default: 0.01,
      min: 0,
      description: 'largest relative error ‖member − shared‖ / ‖member‖ a member may get',
    },
    count: { type: 'integer', min: 1, description: 'instead of a tolerance: merge until each role has at most this many distinct tensors' },
    'group-by': {
      type: 'enum',
      choices: ['role', 'shape'],
      default: 'role',
      description:
        'role: only tensors used the same way by nodes named alike but for layer numbers (blocks.0/q, blocks.1/q); shape: any tensors of the same shape',
    },
    representative: {
      type: 'enum',
      choices: ['best', 'mean', 'member'],
      default: 'best',
      description: 'the shared tensor: the better of a member and the mean, or always one of them',
    },
    ops: { type: 'string', default: DEFAULT_OPS, description: 'op types whose weights may be shared' },
    ...selectionOptions(256),
  },
  run(model: Model, options, context: PassContext): PassSummary {
    const summary = emptySummary(this, options);
    const ir = toNumber(model.proto.ir_version ?? 3);
    const candidates: Candidate[] = [];
    const { weights, skipped } = chooseWeights(
      model,
      options,
      (w) =>
        (w.isGraphOutput ? 'is a graph output' : undefined) ??
        (w.isGraphInput && ir >= 4 ? 'is an overridable graph input (IR ≥ 4)' : undefined),
    );
    summary.skipped.push(...skipped);
    for (const w of weights) candidates.push({ weight: w, values: floatValues(w.tensor) });
    const bound: Bound = options.count !== undefined ? { count: options.count } : { tolerance: options.tolerance };
    const mode: RepresentativeMode = options.representative;
    const edits = new ModelEditor(model);
    let groupNumber = 0,
      shared = 0;
    const sets = [...candidateSets(candidates, options['group-by'] !== 'shape')].filter(([, set]) => set.length > 1);
    context.progress.start(sets.length, 'sharing');
    for (const [key, set] of sets) {
      context.progress.tick(1);
      const role = key.split('|').slice(2).join(' ');
      const plan = planGroups(gramMatrix(set.map((c) => c.values)), set.length, bound, {
        member: mode !== 'mean',
        mean: mode !== 'member',
      });
      for (const indices of plan.groups) {
        const members = indices.map((i) => set[i]!);
        const rep = chooseRepresentative(
          members.map((m) => m.values),
          mode,
          'tolerance' in bound ? bound.tolerance : Infinity,
        );
        if (!rep) {
          for (const m of members)
            summary.skipped.push({
              name: m.weight.name,
              reason: 'no shared tensor keeps every member of its group within the tolerance once zeros are kept',
            });
          continue;
        }
        groupNumber++;
        shared += members.length;
        applyGroup(edits, members, rep, summary, groupNumber, role);
      }
      if (plan.groups.length === 0 && 'tolerance' in bound) {
        summary.notes.push(
          `${role}: ${set.length} tensors, none shared (the closest pair would get a relative error of ${fmt(plan.nextCost)}, above the tolerance ${bound.tolerance})`,
        );
      }
    }
    context.progress.stop();
    if (groupNumber > 0 && ir < 4 && summary.tensors.some((t) => t.details?.kind === 'mean')) {
      model.proto.ir_version = 4;
      summary.notes.push('IR version raised to 4: the shared means are initializers not listed as graph inputs');
    }
    summary.notes.unshift(
      `${shared} tensors in ${groupNumber} ${groupNumber === 1 ? 'group' : 'groups'} now stored ${groupNumber === 1 ? 'once' : 'once each'}`,
    );
    return summary;
  },
});

function applyGroup(
  edits: ModelEditor,
  members: Candidate[],
  rep: Representative,
  summary: PassSummary,
  group: number,
  role: string,
): void {
  const home = edits.graph(members[0]!.weight.home);
  const holder = rep.kind === 'member' ? members[rep.index]! : members[0]!;
  let sharedName: string;
  if (rep.kind === 'member') sharedName = holder.weight.name;
  else {
    sharedName = edits.fresh(`${members[0]!.weight.name}_shared`);
    const v = rep.values;
    home.addInitializer(
      makeTensor(
        sharedName,
        DataType.FLOAT,
        members[0]!.weight.tensor.dims.map(toNumber),
        new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
      ),
    );
  }
  const sharedBytes = rep.values.byteLength;
  const errors: string[] = [];
  for (const m of members) {
    const w = m.weight;
    const bytesBefore = tensorByteLength(w.tensor);
    const error = weightError(m.values, rep.values);
    errors.push(`${w.name} ${fmt(error.relRmsError)}`);
    summary.tensors.push({
      name: w.name,
      shape: w.tensor.dims.map(toNumber),
      dtypeBefore: 'float32',
      dtypeAfter: 'float32',
      bytesBefore,
      bytesAfter: m === holder ? sharedBytes : 0,
      sparsity: sparsity(rep.values),
      ...error,
      form: `shared with ${members.length - 1} other${members.length > 2 ? 's' : ''} (group ${group}): ${rep.kind === 'mean' ? `their mean ${sharedName}` : `member ${sharedName}`}`,
      details: { group, representative: sharedName, kind: rep.kind, members: members.length },
    });
    summary.bytesBefore += bytesBefore;
    if (w.name === sharedName) continue;
    edits.graph(w.home).replaceAllUses(w.name, sharedName);
    dropStorage(edits, { name: w.name, tensor: w.tensor, graph: w.home, constant: w.constant });
  }
  summary.bytesAfter += sharedBytes;
  summary.notes.push(
    `group ${group} (${role}): ${rep.kind === 'mean' ? 'mean' : `member ${sharedName}`} shared by ${members.length}; relative error ${errors.join(', ')}`,
  );
}
