// Running variants of a model on data during a pass, to measure what a rewrite would do: a copy of
// the graph to rewrite (sharing the tensors), and a runner that writes it to a temporary file, runs
// it in ONNX Runtime (a child process, as evaluation) with chosen values exposed as outputs, and
// returns them as float32.
import { makeScratchDir, removeScratchDir } from '../fs/scratch.js';
import { linkSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, ResourceError, UsageError } from '../errors.js';
import { RuntimeFailure } from '../runtime/failure.js';
import { tensorDataBytes, writeModel } from '../io/write.js';
import { memoryLimit } from '../fs/memory.js';
import { elementTypes } from '../ir/elem-types.js';
import { Model } from '../ir/model.js';
import { DataType, TENSOR_LOCATION_EXTERNAL, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../ir/onnx.js';
import { fileRangeOf } from '../ir/data.js';
import { forEachTensor } from '../ir/walk.js';
import { encode } from '../io/codec.js';
import type { EvalBatch, EvalData } from '../runtime/data.js';
import type { NamedArray } from '../io/testdata.js';
import { OrtProcess, onPassThreads, type RemoteSession } from '../runtime/client.js';
import { intAttribute, makeNode } from '../ir/build.js';

/** A graph's structure copied, its subgraphs' too; the tensors shared. */
function copyGraph(g: GraphProto): GraphProto {
  return {
    ...g,
    node: g.node.map((n) => ({
      ...n,
      input: [...n.input],
      output: [...n.output],
      // A subgraph is the node's own: a rewrite of the copy's (fp16 storing a branch's weights) must not reach the model.
      attribute: n.attribute.map((a) =>
        a.g || a.graphs.length > 0 ? { ...a, g: a.g && copyGraph(a.g), graphs: a.graphs.map(copyGraph) } : a,
      ),
    })),
    initializer: [...g.initializer],
    input: [...g.input],
    output: [...g.output],
    value_info: [...g.value_info],
  };
}

/** A copy of the model whose graphs a conversion may rewrite, sharing the tensors (which it replaces, never changes). */
export function trialCopy(model: Model): Model {
  const graph = copyGraph(model.graph);
  // Opset entries too: a rewrite of the copy may import a domain (ensureOpset).
  return new Model({ ...model.proto, opset_import: model.proto.opset_import.map((o) => ({ ...o })), graph }, model.source);
}

/**
 * The model with the named values among its outputs (by name; ONNX Runtime infers their types), each
 * half value through a Cast to float32 (ONNX Runtime's JavaScript API has no bfloat16 tensors).
 * Returns the output name each value is read from.
 */
export function exposing(proto: ModelProto, names: string[]): { proto: ModelProto; outputOf: Map<string, string> } {
  const graph = proto.graph!;
  const types = elementTypes(graph);
  const present = new Set(graph.output.map((o) => o.name));
  const outputOf = new Map<string, string>();
  const casts: NodeProto[] = [];
  const extra = [];
  for (const name of names) {
    const type = types.get(name);
    if (type === DataType.FLOAT16 || type === DataType.BFLOAT16) {
      const out = `${name}__onnxpress_float32`;
      casts.push(makeNode('Cast', [name], [out], `${out}_Cast`, [intAttribute('to', DataType.FLOAT)]));
      extra.push({ name: out, metadata_props: [] });
      outputOf.set(name, out);
    } else {
      if (!present.has(name)) extra.push({ name, metadata_props: [] });
      outputOf.set(name, name);
    }
  }
  return { proto: { ...proto, graph: { ...graph, node: [...graph.node, ...casts], output: [...graph.output, ...extra] } }, outputOf };
}

/**
 * Writes `probe` as `dir`/`file` with its weights left where they are: each main-graph initializer
 * whose bytes are still in a file (a large payload of a model read lazily, or external data) becomes
 * an external-data reference to that file, through a hard link in `dir` (ONNX Runtime reads external
 * data only from the model's folder, and follows symbolic links out of it to refuse them). Nothing is
 * copied, and ONNX Runtime maps those bytes from the page cache instead of reading a second copy into
 * its memory. Where no hard link can be made, or a tensor elsewhere (a subgraph's) is in a file, the
 * probe is written whole. Returns the path.
 */
export function writeProbe(probe: Model, dir: string, file: string): string {
  const path = join(dir, file);
  const graph = probe.graph;
  let elsewhere = false;
  forEachTensor(probe.proto, ({ tensor, place, depth }) => {
    if (fileRangeOf(tensor) && (place !== 'initializer' || depth > 0)) elsewhere = true;
  });
  if (elsewhere) {
    writeModel(probe, path);
    return path;
  }
  const links = new Map<string, string>();
  try {
    for (const t of graph.initializer) {
      const target = fileRangeOf(t)?.file;
      if (target === undefined || links.has(target)) continue;
      const link = `${file}.data${links.size}`;
      linkSync(target, join(dir, link));
      links.set(target, link);
    }
  } catch {
    // Another file system, or no hard links there: the probe is written whole.
    writeModel(probe, path);
    return path;
  }
  const initializer = graph.initializer.map((t): TensorProto => {
    const range = fileRangeOf(t);
    if (!range) return t;
    const reference: TensorProto = {
      ...t,
      external_data: [
        { key: 'location', value: links.get(range.file)! },
        { key: 'offset', value: String(range.offset) },
        { key: 'length', value: String(range.length) },
      ],
      data_location: TENSOR_LOCATION_EXTERNAL,
    };
    delete reference.raw_data;
    return reference;
  });
  writeFileSync(path, encode('onnx.ModelProto', { ...probe.proto, graph: { ...graph, initializer } }));
  return path;
}

/** What ONNX Runtime will hold of a variant, where it is more than its tensors: the memory check's figure. */
export interface HeldMemory {
  bytes: number;
  /** What they are, for the error. */
  what: string;
}

/** Float values of each batch, by name. */
export type ProbeBatch = Map<string, Float32Array>;

/** A model loaded once in ONNX Runtime, run over the batches as often as needed (ProbeRunner.open). */
export interface ProbeSession {
  /** Runs every batch (or those given) with `extra` inputs added and hands `visit` the named values of each. */
  run(extra: NamedArray[], visit: (values: ProbeBatch, batch: number) => void, batches?: EvalBatch[]): Promise<void>;
  close(): Promise<void>;
}

export class ProbeRunner {
  private readonly ort = new OrtProcess(Infinity);
  private readonly dir = makeScratchDir('probe');
  private count = 0;

  constructor(
    private readonly data: EvalData,
    private readonly label: string,
    /** ONNX Runtime's threads (the pass's `checkThreads`: its kernels wait for the check). */
    private readonly threads = 1,
  ) {
    this.ort.prestart();
  }

  /**
   * Runs the model on every batch and hands `visit` the named values of each (the graph's outputs
   * when none are named), one batch at a time: nothing is kept after the visit.
   */
  async run(
    model: Model,
    names: string[] | undefined,
    visit: (values: ProbeBatch, batch: number) => void,
    held?: HeldMemory,
  ): Promise<void> {
    const session = await this.open(model, names, held);
    try {
      await session.run([], visit);
    } finally {
      await session.close();
    }
  }

  /**
   * Loads the model once, for several runs over the batches with different extra inputs (a model
   * whose variants are switched by inputs costs one ONNX Runtime session, not one per variant: a
   * session of a 2.6 GB model takes seconds to create).
   */
  async open(model: Model, names: string[] | undefined, held?: HeldMemory): Promise<ProbeSession> {
    // ONNX Runtime holds every weight in memory: a model larger than this process may use is not run
    // (the child would be killed for memory, or the machine's out-of-memory killer pick another process).
    const bytes = held?.bytes ?? tensorDataBytes(model);
    const limit = memoryLimit();
    if (bytes > limit.bytes) {
      const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
      throw new ResourceError(
        `${held?.what ?? "the model's tensors"} (${gib(bytes)}) exceed the ${gib(limit.bytes)} this process may use (${limit.source})`,
      );
    }
    const wanted = names ?? model.graph.output.map((o) => o.name ?? '');
    const file = `probe-${this.count++}.onnx`;
    const probe = exposing(model.proto, wanted);
    const valueNamed = new Map([...probe.outputOf].map(([value, output]) => [output, value]));
    const path = writeProbe(new Model(probe.proto, model.source), this.dir, file);
    // The probe and its links to the weights' files.
    const remove = () => {
      for (const f of readdirSync(this.dir)) if (f.startsWith(file)) rmSync(join(this.dir, f), { force: true });
    };
    let session: RemoteSession;
    try {
      // A check runs a few batches: the weights' repacking would cost more than it saves.
      session = await this.ort.load(path, this.label, this.threads, { prepack: false, ...onPassThreads(this.threads) });
    } catch (e) {
      remove();
      throw e;
    }
    return {
      run: async (extra, visit, batches = this.data.batches) => {
        for (const [index, batch] of batches.entries()) {
          const values: ProbeBatch = new Map();
          for (const out of await this.ort.run(session, [...batch.inputs, ...extra])) {
            const name = valueNamed.get(out.name);
            if (name !== undefined && out.data instanceof Float32Array) values.set(name, out.data);
          }
          visit(values, index);
        }
      },
      close: async () => {
        remove();
        await this.ort.releaseAll();
      },
    };
  }

  close(): void {
    this.ort.close();
    removeScratchDir(this.dir);
  }
}

/**
 * Why a check could not run (the model does not run on the inputs it was given or synthesized, or
 * needs more memory than this process may use), as one line for a note; anything else (a bug) is
 * thrown on.
 */
export function uncheckable(e: unknown): string {
  if (!(e instanceof InputError) && !(e instanceof UsageError) && !(e instanceof ResourceError)) throw e;
  const line = e.message.split('\n')[0]!;
  return line.length > 300 ? `${line.slice(0, 297)}…` : line;
}

/** What a note suggests where a check could not run: other inputs, unless memory stood in the way. */
export function checkAdvice(e: unknown): string {
  const memory = e instanceof ResourceError || (e instanceof RuntimeFailure && e.kind === 'killed');
  return memory ? 'the check runs the model in ONNX Runtime, in memory' : 'give the check inputs with --data or calibration=DATA';
}
