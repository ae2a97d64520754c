// Exact dedup (--share dedup): initializers and Constant values with the same dtype, shape and bytes
// are stored once and every reader reads the kept one. A 2-D copy stored transposed (a tied
// embedding written once as the Gather table and once as the LM head's [D, V] MatMul weight) keeps
// its name as the output of a Transpose of the kept tensor; ONNX Runtime folds that Transpose when
// it loads the model, so the outputs stay bit-identical.
import type { TensorProto } from '../ir/onnx.js';
import { dtypeInfo, dtypeName } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { ModelEditor, type GraphEditor } from '../ir/editor.js';
import { byteSource, numElements, tensorByteLength, tensorBytes, toNumber } from '../ir/tensor.js';
import { forEachGraph } from '../ir/walk.js';
import { KernelPool, inOrder, windowFor } from '../kernels/pool.js';
import { selectionOptions } from '../pass/options.js';
import { definePass, emptySummary, type PassContext, type PassSummary } from '../pass/pass.js';
import { optionFilter, type OptionFilter } from '../pass/select.js';
import type { Progress } from '../kernels/progress.js';
import { intsAttribute, makeNode } from '../ir/build.js';
import { mergeConstantNodes } from './cse.js';
import {
  digest,
  elementBytes,
  fingerprintOf,
  layoutKey,
  sameBytes,
  transposedLayoutKey,
  type Fingerprint,
} from '../kernels/fingerprint.js';
import { transposedBytes } from '../ir/tensor.js';
import { dropStorage, mustKeep, storedValues, type StoredValue } from './stored.js';
import { subgraphsOf } from '../ir/walk.js';

interface Kept {
  value: StoredValue;
  layout: string;
  digest: string;
  /** Position in visiting order: outer graphs first, then graph order. */
  order: number;
  /** Why the selection leaves it alone (it then neither absorbs copies nor is absorbed). */
  excluded?: string;
  /** Now the output of a Transpose rather than stored. */
  transposed?: boolean;
  /** For a 2-D value: its transposeSamples signatures. */
  samples?: { direct: string; crossed: string };
}

/** The values visible at a point: those of the graph and of every enclosing graph. */
class Scope {
  private readonly byLayout = new Map<string, Kept[]>();

  child(): Scope {
    const s = new Scope();
    for (const [k, v] of this.byLayout) s.byLayout.set(k, [...v]);
    return s;
  }

  add(k: Kept): void {
    const list = this.byLayout.get(k.layout);
    if (list) list.push(k);
    else this.byLayout.set(k.layout, [k]);
  }

  withLayout(layout: string): Kept[] {
    return this.byLayout.get(layout) ?? [];
  }
}

function describeChange(t: TensorProto, name: string, form: string, keptName: string) {
  return {
    name,
    shape: t.dims.map(toNumber),
    dtypeBefore: dtypeName(t.data_type),
    dtypeAfter: dtypeName(t.data_type),
    bytesBefore: tensorByteLength(t),
    bytesAfter: 0,
    maxAbsError: 0,
    relRmsError: 0,
    form,
    details: { sharedWith: keptName },
  };
}

class Deduplicator {
  private order = 0;
  copies = 0;
  transposes = 0;
  mergedNodes = 0;
  /** The kept tensors that absorbed exact copies. */
  readonly kept = new Set<string>();

  constructor(
    private readonly model: Model,
    private readonly summary: PassSummary,
    private readonly filter: OptionFilter,
    private readonly edits: ModelEditor,
    private readonly options: { transpose: boolean; nodes: boolean },
    /** Fingerprints computed ahead (on the kernel workers); others are computed here when met. */
    private readonly fingerprints: ReadonlyMap<TensorProto, Fingerprint> = new Map(),
  ) {}

  visit(editor: GraphEditor, outer: Scope, outerConstants: ReadonlySet<string>): void {
    const scope = outer.child();
    const mine: Kept[] = [];
    const graph = editor.graph;
    for (const value of storedValues(graph)) {
      const readers = editor
        .directReaders(value.name)
        .map((n) => n.name ?? '')
        .filter((n) => n !== '');
      const kept = this.exact(editor, value, scope, readers);
      if (kept) {
        scope.add(kept);
        mine.push(kept);
      }
    }
    if (this.options.transpose) for (const k of mine) this.transposed(editor, k, scope);
    let constants: ReadonlySet<string> = outerConstants;
    if (this.options.nodes) {
      const r = mergeConstantNodes(editor, outerConstants);
      this.mergedNodes += r.merged;
      constants = r.constants;
    } else if (this.copies + this.transposes > 0) editor.sort();
    for (const node of graph.node) for (const g of subgraphsOf(node)) this.visit(editor.subgraph(node, g), scope, constants);
  }

  /** Merges `value` into an equal visible value; returns it as a new kept value when it stays. */
  private exact(editor: GraphEditor, value: StoredValue, scope: Scope, readers: string[]): Kept | undefined {
    const info = dtypeInfo(value.tensor.data_type);
    if (!info || info.bits === 0) return undefined; // strings have no byte form to compare
    // The bytes themselves are read only to confirm a copy whose digest matched.
    let bytes: Uint8Array | undefined;
    const own = () => (bytes ??= tensorBytes(value.tensor));
    const print = this.fingerprints.get(value.tensor) ?? fingerprintOf(own(), value.tensor.dims.map(toNumber), elementBytes(value.tensor));
    const layout = layoutKey(value.tensor);
    const kept: Kept = { value, layout, digest: print.digest, samples: print.samples, order: this.order++ };
    kept.excluded = this.filter([value.name, ...readers], numElements(value.tensor.dims));
    const equal = scope
      .withLayout(layout)
      .filter((k) => !k.transposed && k.digest === kept.digest && sameBytes(tensorBytes(k.value.tensor), own()));
    if (equal.length === 0) return kept;
    const target = equal.find((k) => !k.excluded);
    const why = kept.excluded ?? mustKeep(this.model, value) ?? (target ? undefined : `${equal[0]!.value.name}: ${equal[0]!.excluded}`);
    if (why || !target) {
      this.summary.skipped.push({ name: value.name, reason: `equals ${equal[0]!.value.name} but ${why}` });
      return kept;
    }
    this.record(describeChange(value.tensor, value.name, `shared: reads ${target.value.name}`, target.value.name));
    editor.replaceAllUses(value.name, target.value.name);
    dropStorage(this.edits, value);
    this.copies++;
    this.kept.add(target.value.name);
    return undefined;
  }

  /** Replaces a stored [r, c] value equal to the transpose of an earlier [c, r] one by a Transpose node. */
  private transposed(editor: GraphEditor, k: Kept, scope: Scope): void {
    const t = k.value.tensor;
    const size = elementBytes(t);
    if (t.dims.length !== 2 || size === undefined || k.excluded || mustKeep(this.model, k.value)) return;
    const candidates = scope
      .withLayout(transposedLayoutKey(t))
      .filter(
        (a) =>
          a !== k &&
          a.order < k.order &&
          !a.excluded &&
          !a.transposed &&
          a.samples !== undefined &&
          a.samples.crossed === k.samples?.direct,
      );
    if (candidates.length === 0) return;
    const [rows, cols] = t.dims.map(toNumber) as [number, number];
    const flipped = transposedBytes(tensorBytes(t), rows, cols, size);
    const d = digest(flipped);
    const source = candidates.find((a) => a.digest === d && sameBytes(tensorBytes(a.value.tensor), flipped));
    if (!source) return;
    this.record(describeChange(t, k.value.name, `Transpose of ${source.value.name}`, source.value.name));
    dropStorage(this.edits, k.value);
    const node = makeNode('Transpose', [source.value.name], [k.value.name], this.edits.fresh(`${k.value.name}_Transpose`), [
      intsAttribute('perm', [1, 0]),
    ]);
    editor.insertNode(node, 'start');
    k.transposed = true;
    this.transposes++;
  }

  private record(change: PassSummary['tensors'][number]): void {
    this.summary.tensors.push(change);
    this.summary.bytesBefore += change.bytesBefore;
  }
}

/**
 * Digests (and transpose samples) of every stored tensor with a byte form, computed on the kernel
 * workers, each reading its tensor from the file when it is still there: the main thread then reads
 * only the tensors whose digests match another's.
 */
async function fingerprintsAhead(model: Model, threads: number, progress: Progress): Promise<Map<TensorProto, Fingerprint>> {
  const tensors: TensorProto[] = [];
  forEachGraph(model.proto, ({ graph }) => {
    for (const value of storedValues(graph)) {
      const info = dtypeInfo(value.tensor.data_type);
      if (info && info.bits > 0) tensors.push(value.tensor);
    }
  });
  const prints = new Map<TensorProto, Fingerprint>();
  const pool = new KernelPool(threads);
  const start = (t: TensorProto) =>
    pool.run({ kind: 'fingerprint', bytes: byteSource(t), dims: t.dims.map(toNumber), size: elementBytes(t) });
  try {
    const report = { progress, label: 'dedup', bytesOf: (t: TensorProto) => tensorByteLength(t) };
    for await (const [t, print] of inOrder(tensors, windowFor(threads), start, report)) prints.set(t, print);
  } finally {
    await pool.close();
  }
  return prints;
}

export const dedupPass = definePass({
  family: 'share',
  method: 'dedup',
  description:
    'exact dedup: initializers and Constant values with the same dtype, shape and bytes are stored once (also 2-D copies stored transposed, recreated by a Transpose); lossless',
  options: {
    transpose: {
      type: 'boolean',
      default: true,
      description:
        'also find 2-D copies stored transposed and recreate them with a Transpose of the kept tensor (folded by ONNX Runtime at load)',
    },
    nodes: {
      type: 'boolean',
      default: true,
      description: 'also merge identical nodes that compute only from constants (the DequantizeLinear of copies quantized before dedup)',
    },
    ...selectionOptions(),
  },
  async run(model: Model, options, context: PassContext): Promise<PassSummary> {
    const summary = emptySummary(this, options);
    if (!model.proto.graph) return summary;
    const edits = new ModelEditor(model);
    const dedup = new Deduplicator(
      model,
      summary,
      optionFilter(options),
      edits,
      {
        transpose: options.transpose,
        nodes: options.nodes,
      },
      await fingerprintsAhead(model, context.threads, context.progress),
    );
    dedup.visit(edits.graph(model.graph), new Scope(), new Set());
    if (dedup.copies > 0)
      summary.notes.push(
        `${dedup.copies} exact ${dedup.copies === 1 ? 'copy' : 'copies'} of ${dedup.kept.size} ${dedup.kept.size === 1 ? 'tensor' : 'tensors'} removed; their readers read the kept tensor`,
      );
    if (dedup.transposes > 0)
      summary.notes.push(
        `${dedup.transposes} transposed ${dedup.transposes === 1 ? 'copy' : 'copies'} recreated by a Transpose node of the kept tensor`,
      );
    if (dedup.mergedNodes > 0)
      summary.notes.push(`${dedup.mergedNodes} identical ${dedup.mergedNodes === 1 ? 'node' : 'nodes'} computing from constants merged`);
    if (model.graph.sparse_initializer.length > 0) summary.notes.push('sparse initializers are left as they are');
    return summary;
  },
});
