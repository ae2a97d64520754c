// Running variants of a model on data during a pass, to measure what a rewrite would do: a copy of
// the graph to rewrite (sharing the tensors), and a runner that writes it to a temporary file, runs
// it in ONNX Runtime (a child process, as evaluation) with chosen values exposed as outputs, and
// returns them as float32.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { tensorDataBytes, writeModel } from '../io/write.js';
import { memoryLimit } from '../fs/memory.js';
import { elementTypes } from '../ir/elem-types.js';
import { Model } from '../ir/model.js';
import { DataType, type ModelProto, type NodeProto } from '../ir/onnx.js';
import type { EvalData } from '../runtime/data.js';
import { OrtProcess, type RemoteSession } from '../runtime/client.js';
import { intAttribute, makeNode } from '../ir/build.js';

/** A copy of the model whose graph a conversion may rewrite, sharing the tensors (which it replaces, never changes). */
export function trialCopy(model: Model): Model {
  const g = model.graph;
  const graph = {
    ...g,
    node: g.node.map((n) => ({ ...n, input: [...n.input], output: [...n.output], attribute: [...n.attribute] })),
    initializer: [...g.initializer],
    input: [...g.input],
    output: [...g.output],
    value_info: [...g.value_info],
  };
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

/** Float values of each batch, by name. */
export type ProbeBatch = Map<string, Float32Array>;

export class ProbeRunner {
  private readonly ort = new OrtProcess(Infinity);
  private readonly dir = mkdtempSync(join(tmpdir(), 'onnxpress-probe-'));
  private count = 0;

  constructor(
    private readonly data: EvalData,
    private readonly label: string,
  ) {
    this.ort.prestart();
  }

  /**
   * Runs the model on every batch and hands `visit` the named values of each (the graph's outputs
   * when none are named), one batch at a time: nothing is kept after the visit.
   */
  async run(model: Model, names: string[] | undefined, visit: (values: ProbeBatch, batch: number) => void): Promise<void> {
    // ONNX Runtime holds every weight in memory: a model larger than this process may use is not run
    // (the child would be killed for memory, and the probe's copy would double the disk it takes).
    const bytes = tensorDataBytes(model);
    const limit = memoryLimit();
    if (bytes > limit.bytes) {
      const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
      throw new InputError(`the model's ${gib(bytes)} of tensors exceed the ${gib(limit.bytes)} this process may use (${limit.source})`);
    }
    const wanted = names ?? model.graph.output.map((o) => o.name ?? '');
    const path = join(this.dir, `probe-${this.count++}.onnx`);
    const probe = exposing(model.proto, wanted);
    const valueNamed = new Map([...probe.outputOf].map(([value, output]) => [output, value]));
    writeModel(new Model(probe.proto, model.source), path);
    try {
      const session: RemoteSession = await this.ort.load(path, this.label);
      for (const [index, batch] of this.data.batches.entries()) {
        const values: ProbeBatch = new Map();
        for (const out of await this.ort.run(session, batch.inputs)) {
          const name = valueNamed.get(out.name);
          if (name !== undefined && out.data instanceof Float32Array) values.set(name, out.data);
        }
        visit(values, index);
      }
    } finally {
      rmSync(path, { force: true });
    }
  }

  close(): void {
    this.ort.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Why a check could not run (the model does not run on the inputs it was given or synthesized), as
 * one line for a note; anything else (a bug) is thrown on.
 */
export function uncheckable(e: unknown): string {
  if (!(e instanceof InputError) && !(e instanceof UsageError)) throw e;
  const line = e.message.split('\n')[0]!;
  return line.length > 300 ? `${line.slice(0, 297)}…` : line;
}
