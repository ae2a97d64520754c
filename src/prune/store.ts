// Writing pruned values back, and storing pruned tensors sparsely when that is smaller: a finish
// step (SPARSE_STORAGE), run once after the last step of a pipeline.
import { GraphEditor } from '../ir/editor.js';
import { DataType, type GraphProto, type SparseTensorProto, type TensorProto } from '../ir/onnx.js';
import type { Model } from '../ir/model.js';
import { makeTensor, numElements, tensorByteLength, tensorValues } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';
import type { OptionSpec } from '../pass/options.js';
import type { Finish, PassContext, PassSummary, TensorChange } from '../pass/pass.js';
import { dtypeName } from '../ir/dtype.js';
import { forEachGraph } from '../ir/walk.js';
import { dataOf, setData } from '../ir/data.js';
import { toHalf } from '../ir/half.js';

/**
 * Replaces a weight's values (same shape) with new values, stored in the weight's own float type:
 * a float16 or bfloat16 weight's kept values come back to their own bits, and its zeros are zeros.
 */
export function setValues(w: Weight, values: Float32Array): void {
  const t = w.tensor;
  if (t.data_type === DataType.FLOAT16 || t.data_type === DataType.BFLOAT16) {
    setData(t, new Uint8Array(toHalf(values, t.data_type === DataType.BFLOAT16).bits.buffer));
  } else setData(t, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  if (w.constant) {
    const value = w.constant.attribute.find((a) => a.name === 'value');
    if (value) value.t = t;
  }
}

/** The weight types the unstructured pruning passes take: float32, and float16/bfloat16 kept in their type. */
export const PRUNABLE_DTYPES: readonly number[] = [DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16];

/** The `storage` option of the unstructured pruning passes: what markPruned and SPARSE_STORAGE act on. */
export const STORAGE_OPTION = {
  type: 'enum',
  choices: ['auto', 'dense'],
  default: 'auto',
  description:
    'auto: store a pruned tensor as a sparse_initializer where that is smaller (and nothing later changes it); dense: always dense',
} as const satisfies OptionSpec;

/** Pruned tensors by name: the bytes the pass left and how many of their values are zero. */
type Pruned = Map<string, { data: unknown; zeros: number }>;

/**
 * Records that a tensor was pruned (its values just set, `zeros` of them ±0) and may be stored
 * sparsely once the pipeline is done.
 */
export function markPruned(context: PassContext, w: Weight, zeros: number): void {
  context.finishing?.(SPARSE_STORAGE).set(w.name, { data: dataOf(w.tensor), zeros });
}

/**
 * Gives a weight its pruned values (same shape, `zeros` of them ±0) and adds its row to the pass's
 * summary (a dense tensor keeps its bytes here). One that may be stored sparsely is marked for
 * SPARSE_STORAGE; one that stays dense is settled at once (settledDense: an external-data output of
 * the last step writes it now, where it was held to the end — all 2.64 GB of the llama-style model).
 */
export function recordPruned(
  model: Model,
  context: PassContext,
  summary: PassSummary,
  w: Weight,
  pruned: { values: Float32Array; zeros: number; storage: string },
  row: Omit<TensorChange, 'name' | 'shape' | 'dtypeBefore' | 'dtypeAfter' | 'bytesBefore' | 'bytesAfter' | 'sparsity'> &
    Partial<Pick<TensorChange, 'shape'>>,
): void {
  const bytes = tensorByteLength(w.tensor);
  setValues(w, pruned.values);
  // A settled weight is final (the last step): SPARSE_STORAGE would only read it back to find it no smaller.
  if (!settledDense(model, w, pruned) && pruned.storage === 'auto') markPruned(context, w, pruned.zeros);
  summary.bytesBefore += bytes;
  summary.bytesAfter += bytes;
  summary.tensors.push({
    name: w.name,
    shape: w.tensor.dims.map(Number),
    dtypeBefore: dtypeName(w.tensor.data_type),
    dtypeAfter: dtypeName(w.tensor.data_type),
    bytesBefore: bytes,
    bytesAfter: bytes,
    sparsity: pruned.zeros / pruned.values.length,
    ...row,
  });
}

/**
 * Hands a pruned weight that stays dense (storage=dense, or too few zeros for sparse storage to be
 * smaller) to model.settle, where it is an initializer of the main graph (a Constant's value or a
 * subgraph's stays where it is). Returns whether it was settled (its bytes written).
 */
function settledDense(model: Model, w: Weight, pruned: { values: Float32Array; zeros: number; storage: string }): boolean {
  if (pruned.storage === 'auto' && sparseSmaller(w.tensor, pruned.values.length - pruned.zeros)) return false;
  if (w.constant || w.home !== model.graph) return false;
  const data = dataOf(w.tensor);
  model.settle([w.tensor]);
  return dataOf(w.tensor) !== data;
}

/** Whether a float32 tensor with `nonZero` values takes fewer bytes as a sparse_initializer (values + int64 indices). */
function sparseSmaller(t: TensorProto, nonZero: number): boolean {
  return t.data_type === DataType.FLOAT && nonZero * (4 + 8) < numElements(t.dims) * 4;
}

/**
 * Values that are not ±0, counted without a branch: pruned tensors hold zeros at random places, and
 * a branch per value mispredicted half the time (bench/RESULTS.md, §"Figures moved from source
 * comments").
 */
function countNonZero(values: Float32Array): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let n = 0;
  // (|x| bits + 0x7fffffff) reaches 2^31 exactly when |x| bits are not 0.
  for (let i = 0; i < bits.length; i++) n += ((bits[i]! & 0x7fffffff) + 0x7fffffff) >>> 31;
  return n;
}

/**
 * Moves pruned float initializers that are still float (no later pass replaced them) to
 * sparse_initializer where values + int64 indices take fewer bytes than the dense tensor.
 * Returns the names moved. ONNX Runtime densifies sparse initializers when it loads the model.
 */
function storeSparse(model: Model, names: Pruned): { name: string; denseBytes: number; sparseBytes: number }[] {
  const moved: { name: string; denseBytes: number; sparseBytes: number }[] = [];
  if (names.size === 0) return moved;
  forEachGraph(model.proto, ({ graph }: { graph: GraphProto }) => {
    const dense: TensorProto[] = [];
    for (const t of graph.initializer) {
      const marked = names.get(t.name ?? '');
      if (!marked || t.data_type !== DataType.FLOAT || graph.input.some((i) => i.name === t.name)) continue;
      const count = numElements(t.dims);
      // The count the pass made, where no later pass changed the bytes (no need to read them).
      const nnz = dataOf(t) === marked.data ? count - marked.zeros : countNonZero(tensorValues(t) as Float32Array);
      const denseBytes = count * 4;
      const sparseBytes = nnz * (4 + 8);
      if (!sparseSmaller(t, nnz)) continue;
      const values = tensorValues(t) as Float32Array;
      const vals = new Float32Array(nnz);
      const idx = new BigInt64Array(nnz);
      let j = 0;
      for (let i = 0; i < values.length; i++)
        if (values[i] !== 0) {
          vals[j] = values[i]!;
          idx[j++] = BigInt(i);
        }
      const sparse: SparseTensorProto = {
        values: makeTensor(t.name ?? '', DataType.FLOAT, [nnz], new Uint8Array(vals.buffer)),
        indices: makeTensor('', DataType.INT64, [nnz], new Uint8Array(idx.buffer)),
        dims: t.dims,
      };
      delete sparse.indices!.name;
      graph.sparse_initializer.push(sparse);
      dense.push(t);
      moved.push({ name: t.name ?? '', denseBytes, sparseBytes });
    }
    if (dense.length > 0) new GraphEditor(graph).removeInitializers(dense);
  });
  return moved;
}

/** Pruned tensors that stayed float stored sparsely where that is smaller, once no pass can change them. */
export const SPARSE_STORAGE: Finish<Pruned> = {
  start: () => new Map(),
  run(model, pruned): PassSummary | undefined {
    const moved = storeSparse(model, pruned);
    if (moved.length === 0) return undefined;
    return {
      pass: 'prune',
      method: 'sparse-storage',
      options: {},
      skipped: [],
      notes: ['pruned tensors stored as sparse_initializer (values + int64 indices) where smaller than dense'],
      bytesBefore: moved.reduce((n, m) => n + m.denseBytes, 0),
      bytesAfter: moved.reduce((n, m) => n + m.sparseBytes, 0),
      tensors: moved.map((m) => ({
        name: m.name,
        shape: [],
        dtypeBefore: 'float32',
        dtypeAfter: 'float32',
        bytesBefore: m.denseBytes,
        bytesAfter: m.sparseBytes,
        form: 'sparse_initializer',
      })),
    };
  },
};
