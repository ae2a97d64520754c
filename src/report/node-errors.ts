// Which layer broke it: every float value a node of the compressed model's main graph writes under a
// name the original's main graph also has is compared with the original's, as the outputs are
// (cosine, SNR, largest absolute error). Both models run again on the first samples of the
// evaluation data with those values exposed as extra outputs, once per group of values fetched, and ONNX
// Runtime's child process compares them where they are. The passes keep value names (a quantized
// activation's DequantizeLinear writes the activation's name), so values line up. Error
// carried from earlier layers shows in every later one, so the list is ordered by the error a node
// adds: its noise-to-signal power ratio less that of the worst value it reads (traced back through
// nodes not compared), which is about 0 for a node that only carries its inputs' error.
import { makeScratchDir, removeScratchDir } from '../fs/scratch.js';
import { join } from 'node:path';
import { writeModel } from '../io/write.js';
import { elementTypes } from '../ir/elem-types.js';
import { Model } from '../ir/model.js';
import { DataType, type ModelProto, type NodeProto } from '../ir/onnx.js';
import type { OrtProcess } from '../runtime/client.js';
import { firstSamples, type EvalBatch } from '../runtime/data.js';
import type { NodeError } from './report.js';

/**
 * Values of the main graph written by a node other than Constant, known to be float32, by name. Only
 * known ones: exposing a value whose type ONNX Runtime infers otherwise can crash it (a Range's
 * int64 output in the char LM ends the process with SIGSEGV).
 */
function floatNodeOutputs(model: Model): Map<string, NodeProto> {
  const types = elementTypes(model.graph);
  const out = new Map<string, NodeProto>();
  for (const node of model.graph.node) {
    if (node.op_type === 'Constant') continue;
    for (const o of node.output) if (o && types.get(o) === DataType.FLOAT) out.set(o, node);
  }
  return out;
}

/**
 * The SNR of a value as the worst compared value it depends on: its own where compared, else the worst
 * of its producer's inputs, traced back (graph inputs and initializers are the same in both models).
 */
function upstreamSnr(reference: Model, snrOf: Map<string, number>): (value: string) => number {
  const producers = new Map<string, NodeProto>();
  for (const node of reference.graph.node) for (const o of node.output) if (o) producers.set(o, node);
  const memo = new Map<string, number>();
  const visit = (value: string): number => {
    const known = snrOf.get(value) ?? memo.get(value);
    if (known !== undefined) return known;
    memo.set(value, Infinity);
    const producer = producers.get(value);
    const snr = producer ? Math.min(Infinity, ...producer.input.filter((i) => i).map(visit)) : Infinity;
    memo.set(value, snr);
    return snr;
  };
  return (value) => (value ? visit(value) : Infinity);
}

function exposing(model: Model, names: string[]): Model {
  const graph = model.graph;
  const present = new Set(graph.output.map((o) => o.name));
  const extra = names.filter((n) => !present.has(n)).map((name) => ({ name, metadata_props: [] }));
  const proto: ModelProto = { ...model.proto, graph: { ...graph, output: [...graph.output, ...extra] } };
  return new Model(proto, model.source);
}

/**
 * Bytes of the values each model's run hands out at once for the comparison (the child compares them
 * where they are). All at once, the PP-OCRv4 recognizer's 402 values on 16 lines were 6.5 GB, which
 * no process could pass to another.
 */
const GROUP_BYTES = 1 << 30;

/**
 * Samples the comparison runs on at most: every value of a model is handed out once per sample, so
 * the whole first batch made the table cost 16× the recognizer's run (81 s against 5 s for the rest
 * of its evaluation); four samples rank the nodes as well on the fixtures' tests.
 */
export const NODE_SAMPLES = 4;

/** The per-node errors on `batch` (its first NODE_SAMPLES samples), worst cosine first. */
export async function nodeErrors(
  ort: OrtProcess,
  reference: Model,
  candidate: Model,
  batch: EvalBatch,
  hint: string,
): Promise<NodeError[]> {
  const refOutputs = floatNodeOutputs(reference);
  const shared = [...floatNodeOutputs(candidate).keys()].filter((name) => refOutputs.has(name));
  if (shared.length === 0) return [];
  const dir = makeScratchDir('nodes');
  try {
    const load = async (model: Model, file: string, label: string) => {
      const path = join(dir, file);
      writeModel(exposing(model, shared), path);
      return ort.load(path, label);
    };
    const ref = await load(reference, 'reference.onnx', reference.source?.given ?? 'the reference');
    const cmp = await load(candidate, 'candidate.onnx', candidate.source?.given ?? 'the compressed model');
    const inputs = firstSamples(reference, batch.inputs, NODE_SAMPLES);
    const compared = await ort.compare(ref, cmp, inputs, shared, GROUP_BYTES, hint);
    const errors: Omit<NodeError, 'noiseAdded'>[] = [];
    for (const name of shared) {
      const f = compared[name];
      if (!f) continue;
      const node = refOutputs.get(name)!;
      errors.push({
        name: node.name || name,
        opType: node.op_type ?? '',
        output: name,
        cosine: f.cosine,
        snrDb: f.snrDb,
        maxAbsError: f.maxAbsError,
      });
    }
    const snrOf = new Map(errors.map((e) => [e.output, Number.isNaN(e.snrDb) ? -Infinity : e.snrDb]));
    const upstream = upstreamSnr(reference, snrOf);
    const noise = (snrDb: number) => 10 ** (-snrDb / 10);
    const ranked = errors.map((e) => {
      const input = Math.min(Infinity, ...refOutputs.get(e.output)!.input.map((i) => upstream(i)));
      return { ...e, noiseAdded: noise(snrOf.get(e.output)!) - noise(input) };
    });
    return ranked.sort((x, y) => y.noiseAdded - x.noiseAdded || x.snrDb - y.snrDb);
  } finally {
    removeScratchDir(dir);
  }
}
