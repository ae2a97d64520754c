// int8 on weights read through ops that only move elements (issue 16 item 1, the Silero v5 export):
// PyTorch's exporter cuts an LSTM's weight_ih [4H, I] into its gates with Slice, puts them back in
// ONNX's order with Concat and adds the direction axis with Unsqueeze, so no op reads the tensor
// itself as a weight. int8 stores it as int8 codes with a DequantizeLinear in its place (exact for
// whatever the moves do), a scale per row of the source — the LSTM's output rows, traced back through
// the moves. Models built here, quantized through the CLI, run in ONNX Runtime against the originals;
// scales checked in closed form (max|row| / 127).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/io/read.js';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from '../../src/ir/onnx.js';
import { tensorValues } from '../../src/ir/tensor.js';
import { createSession, run } from '../../src/runtime/ort.js';
import { graph, graphAttr, input, int, ints, model, node, save, tensor, tensorAttr, values, vi, BOOL, INT64 } from '../convert/helpers.js';
import { cli, cosine, scratch } from '../helpers.js';
import { rowScales } from './helpers.js';

const dir = scratch();
const SEQ = 6,
  BATCH = 2,
  IN = 24,
  H = 16;

/** torch's gate order i, f, g, o → ONNX's i, o, f, c: rows [0:H], [3H:4H], [H:3H]. */
const GATE_SLICES: [number, number][] = [
  [0, H],
  [3 * H, 4 * H],
  [H, 3 * H],
];

/** The nodes and constants that turn a [4H, cols] source into the LSTM's [1, 4H, cols] input, as the exporter does. */
function exporterMoves(source: string, out: string): { nodes: NodeProto[]; constants: TensorProto[] } {
  const nodes: NodeProto[] = [];
  const constants: TensorProto[] = [tensor(`${out}_axes0`, [1], [0], INT64)];
  const pieces = GATE_SLICES.map(([start, end], i) => {
    const piece = `${out}_gate${i}`;
    constants.push(tensor(`${piece}_start`, [1], [start], INT64), tensor(`${piece}_end`, [1], [end], INT64));
    nodes.push(node('Slice', [source, `${piece}_start`, `${piece}_end`, `${out}_axes0`], [piece]));
    return piece;
  });
  nodes.push(node('Concat', pieces, [`${out}_gates`], [int('axis', 0)]));
  nodes.push(node('Unsqueeze', [`${out}_gates`, `${out}_axes0`], [out]));
  return { nodes, constants };
}

/** An LSTM whose W and R come through the exporter's moves; in the main graph, or inside both branches of an If. */
function slicedLstmModel(inIf: boolean): ModelProto {
  const k = 1 / Math.sqrt(H);
  const scaled = (n: number, seed: number) => Array.from(values(n, seed), (x) => x * 0.5 * k);
  const body = (prefix: string) => {
    const W = tensor(`${prefix}weight_ih`, [4 * H, IN], scaled(4 * H * IN, 3));
    const R = tensor(`${prefix}weight_hh`, [4 * H, H], scaled(4 * H * H, 4));
    const w = exporterMoves(W.name!, `${prefix}W`),
      r = exporterMoves(R.name!, `${prefix}R`);
    const lstm = node('LSTM', ['X', `${prefix}W`, `${prefix}R`], [`${prefix}Y`], [int('hidden_size', H)]);
    return { nodes: [...w.nodes, ...r.nodes, lstm], initializers: [W, R, ...w.constants, ...r.constants] };
  };
  if (!inIf) {
    const { nodes, initializers } = body('');
    return model(graph(nodes, [vi('X', [SEQ, BATCH, IN])], [vi('Y', [SEQ, 1, BATCH, H])], initializers), 14);
  }
  // Each branch holds its own weights, as Constant nodes (Silero v5 keeps them so).
  const branch = (prefix: string): GraphProto => {
    const { nodes, initializers } = body(prefix);
    const constants = initializers.map((t) => node('Constant', [], [t.name!], [tensorAttr('value', t)]));
    return graph([...constants, ...nodes, node('Identity', [`${prefix}Y`], [`${prefix}out`])], [], [vi(`${prefix}out`)]);
  };
  const g = graph(
    [node('If', ['cond'], ['Y'], [graphAttr('then_branch', branch('then_')), graphAttr('else_branch', branch('else_'))])],
    [vi('X', [SEQ, BATCH, IN]), vi('cond', [], BOOL)],
    [vi('Y')],
  );
  return model(g, 14);
}

interface Report {
  passes: { tensorsChanged: number; skipped: { name: string; reason: string }[] }[];
  tensors: { name: string; dtypeAfter?: string; note?: string }[];
}

function compress(
  label: string,
  proto: ModelProto,
  args: string[],
): { original: string; output: string; code: number; json?: Report; stdout: string } {
  const original = save(join(dir, `${label}.onnx`), proto);
  const output = join(dir, `${label}-out.onnx`);
  const r = cli(['compress', original, '-o', output, ...args]);
  return {
    original,
    output,
    code: r.code,
    stdout: r.stdout,
    json: args.includes('--json') && r.code === 0 ? JSON.parse(r.stdout) : undefined,
  };
}

/** Every node of a graph and its subgraphs. */
function allNodes(g: GraphProto): NodeProto[] {
  return g.node.flatMap((n) => [n, ...n.attribute.flatMap((a) => (a.g ? allNodes(a.g) : []))]);
}

/** The tensor a name holds: an initializer or a Constant node's value, in any graph. */
function tensorNamed(g: GraphProto, name: string): TensorProto | undefined {
  const inits = (x: GraphProto): TensorProto[] => [
    ...x.initializer,
    ...x.node.flatMap((n) => n.attribute.flatMap((a) => (a.g ? inits(a.g) : []))),
  ];
  const c = allNodes(g).find((n) => n.op_type === 'Constant' && n.output[0] === name);
  return c?.attribute[0]?.t ?? inits(g).find((t) => t.name === name);
}

async function outputCosine(original: string, output: string, feeds = [input('X', [SEQ, BATCH, IN], 7)]): Promise<number> {
  const a = (await run(await createSession(original), feeds))[0]!,
    b = (await run(await createSession(output), feeds))[0]!;
  expect(b.dims).toEqual(a.dims);
  return cosine(a.data as ArrayLike<number>, b.data as ArrayLike<number>);
}

describe('int8 on weights read through Slice, Concat, Unsqueeze (an exporter-style LSTM)', () => {
  for (const inIf of [false, true]) {
    const label = inIf ? 'in-if' : 'main-graph';
    it(`${label}: W and R int8 with a scale per source row (max|row| / 127), the LSTM runs, Y cosine ≥ 0.999`, async () => {
      const proto = slicedLstmModel(inIf);
      const { original, output, code, json } = compress(label, proto, ['--quantize', 'int8', '--json']);
      expect(code).toBe(0);
      const sources = inIf ? ['then_weight_ih', 'then_weight_hh', 'else_weight_ih', 'else_weight_hh'] : ['weight_ih', 'weight_hh'];
      expect(json!.passes[0]!.tensorsChanged).toBe(sources.length);
      expect(json!.passes[0]!.skipped.map((s) => s.name)).not.toEqual(expect.arrayContaining(sources.slice(0, 1)));
      for (const name of sources)
        expect(json!.tensors.find((t) => t.name === name)?.note ?? '').toMatch(/per-channel \(axis 0\), read through Slice → LSTM/);

      const out = readModel(output);
      const before = readModel(original);
      for (const name of sources) {
        const dq = allNodes(out.graph).find((n) => n.op_type === 'DequantizeLinear' && n.output[0] === name);
        expect(dq, `${name} made by a DequantizeLinear`).toBeDefined();
        expect(Number(dq!.attribute.find((a) => a.name === 'axis')?.i)).toBe(0);
        const codes = tensorNamed(out.graph, dq!.input[0]!)!;
        expect(codes.data_type).toBe(3); // INT8
        const src = tensorNamed(before.graph, name)!;
        const [rows, cols] = src.dims.map(Number) as [number, number];
        const scales = Array.from(tensorValues(tensorNamed(out.graph, dq!.input[1]!)!) as Float32Array);
        expect(scales).toEqual(rowScales(tensorValues(src) as Float32Array, rows, cols));
      }
      // The Slice/Concat/Unsqueeze chain is left as it was: it now moves the dequantized values.
      expect(allNodes(out.graph).filter((n) => n.op_type === 'Slice').length).toBe(
        allNodes(before.graph).filter((n) => n.op_type === 'Slice').length,
      );
      const feeds = [input('X', [SEQ, BATCH, IN], 7), ...(inIf ? [{ name: 'cond', dtype: BOOL, dims: [], data: Uint8Array.of(1) }] : [])];
      expect(await outputCosine(original, output, feeds)).toBeGreaterThanOrEqual(0.999);
    });
  }

  it('a weight read through Transpose by MatMul: a scale per row of the source, which is MatMul B′s output column', async () => {
    const N = 16,
      K = 20;
    const w = tensor('Wt', [N, K], Array.from(values(N * K, 9)));
    const g = graph(
      [node('Transpose', ['Wt'], ['W'], [ints('perm', [1, 0])]), node('MatMul', ['A', 'W'], ['Y'])],
      [vi('A', [3, K])],
      [vi('Y', [3, N])],
      [w],
    );
    const { original, output, code, json } = compress('transpose', model(g, 13), ['--quantize', 'int8', '--json']);
    expect(code).toBe(0);
    expect(json!.tensors.find((t) => t.name === 'Wt')?.note).toMatch(/per-channel \(axis 0\), read through Transpose → MatMul/);
    const out = readModel(output);
    const dq = out.graph.node.find((n) => n.op_type === 'DequantizeLinear' && n.output[0] === 'Wt')!;
    const scales = Array.from(tensorValues(out.graph.initializer.find((t) => t.name === dq.input[1])!) as Float32Array);
    expect(scales).toEqual(rowScales(tensorValues(w) as Float32Array, N, K));
    expect(await outputCosine(original, output, [input('A', [3, K], 5)])).toBeGreaterThanOrEqual(0.9999);
  });

  it('a weight whose moved values reach another op (Slice → Add) stays float, named in the skips, and --strict exits 3', () => {
    const w = tensor('table', [64, 80], Array.from(values(64 * 80, 11)));
    const g = graph(
      [node('Slice', ['table', 's', 'e'], ['part']), node('Add', ['part', 'X'], ['Y'])],
      [vi('X', [8, 80])],
      [vi('Y', [8, 80])],
      [w, tensor('s', [1], [0], INT64), tensor('e', [1], [8], INT64)],
    );
    const proto = model(g, 13);
    const plain = compress('escape', proto, ['--quantize', 'int8']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/read by Slice, not as the weight of an op this pass takes: left as it is \(table\)/);
    expect(readModel(plain.output).graph.initializer.find((t) => t.name === 'table')?.data_type).toBe(1);
    expect(compress('escape-strict', proto, ['--quantize', 'int8', '--strict']).code).toBe(3);
  });
});
