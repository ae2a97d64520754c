// Evaluation inputs checked against the inputs a model declares, before ONNX Runtime runs it: where
// ONNX Runtime would fail with "input 'x' is missing in 'feeds'" or "Unexpected input data type",
// the user learns which input of which model expects what, and what the data gives.
import { InputError } from '../errors.js';
import type { NamedArray } from '../io/testdata.js';
import type { TensorShapeDimension, TypeProto, ValueInfoProto } from '../ir/onnx.js';
import { dtypeInfo, dtypeName } from '../ir/dtype.js';
import { GraphIndex } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { toNumber } from '../ir/tensor.js';

/** "float32 [N, 3, 224, 224]" (a dimension with neither value nor name is '?'), or "float32, any shape". */
export function declaredType(type: TypeProto | undefined): string {
  const tensor = type?.tensor_type;
  if (!tensor) return 'a non-tensor value';
  return `${dtypeName(tensor.elem_type)}${tensor.shape ? ` ${declaredShape(type)}` : ', any shape'}`;
}

/** "[N, 3, ?]": the declared dimensions alone ('?' for unnamed ones), or "any shape". */
export function declaredShape(type: TypeProto | undefined): string {
  const dims = type?.tensor_type?.shape?.dim.map((d) => (d.dim_value !== undefined ? String(toNumber(d.dim_value)) : d.dim_param || '?'));
  return dims ? `[${dims.join(', ')}]` : 'any shape';
}

const given = (a: NamedArray) => `${dtypeName(a.dtype)} [${a.dims.join(', ')}]`;

/** Why `a` cannot be fed as `input`, or undefined. */
function mismatch(input: ValueInfoProto, a: NamedArray): string | undefined {
  const tensor = input.type?.tensor_type;
  // Sequences, maps and optionals: ONNX Runtime for Node cannot feed them; it says so itself.
  if (!tensor) return undefined;
  const shape = tensor.shape?.dim;
  const fixed = (d: TensorShapeDimension) => (d.dim_value === undefined ? undefined : toNumber(d.dim_value));
  // As ONNX Runtime does: a scalar input takes any one-element tensor, [1] or [1, 1] too.
  const shapeFits =
    !shape ||
    (shape.length === 0
      ? a.dims.every((d) => d === 1)
      : shape.length === a.dims.length && shape.every((d, i) => (fixed(d) ?? -1) < 0 || fixed(d) === a.dims[i]));
  const fits = (tensor.elem_type === undefined || tensor.elem_type === a.dtype) && shapeFits;
  if (!fits) return `input '${a.name}' is ${declaredType(input.type)}, the data gives ${given(a)}`;
  if (!dtypeInfo(a.dtype)?.ort) return `input '${a.name}' is ${dtypeName(a.dtype)}, which ONNX Runtime for Node cannot take`;
  return undefined;
}

/** Throws an InputError naming `label` when `inputs` do not fit the model's declared inputs. */
export function checkFeeds(model: Model, label: string, inputs: NamedArray[]): void {
  const declared = new Map(model.graph.input.map((i) => [i.name ?? '', i]));
  const fed = new Set(inputs.map((a) => a.name));
  const names = inputs.length ? inputs.map((a) => `'${a.name}'`).join(', ') : 'none';
  for (const input of new GraphIndex(model.graph).realInputs()) {
    if (!fed.has(input.name ?? '')) {
      throw new InputError(
        `${label}: needs input '${input.name}' (${declaredType(input.type)}), which the evaluation data does not give (it gives ${names})`,
      );
    }
  }
  for (const a of inputs) {
    const input = declared.get(a.name);
    if (!input) {
      const inputs = [...declared.keys()].map((n) => `'${n}'`).join(', ') || 'none';
      throw new InputError(`${label}: the evaluation data gives input '${a.name}', which the model does not have (its inputs: ${inputs})`);
    }
    const problem = mismatch(input, a);
    if (problem) throw new InputError(`${label}: ${problem}`);
  }
}
