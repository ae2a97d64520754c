// Gemm rewritten as MatMul (+ Add of its bias) before static quantization. ONNX Runtime's CPU build
// (onnxruntime-node 1.30, checked by tests/quantize/static.test.ts) fuses QDQ MatMul into
// QLinearMatMul or MatMulIntegerToFloat, but leaves a QDQ Gemm whose weight is a constant unfused,
// computing it in float from dequantized weights. A Gemm without transA whose alpha and beta are 1 is
// exactly A·B (+ C); with transB its weight is stored transposed, as MatMul's [K, N]. The product
// of one with a bias is quantized (static.ts): ONNX Runtime would otherwise fuse a 2-D MatMul and
// the Add after it back into a Gemm (MatMulAddFusion) before its QDQ fusions run.
import { makeNode } from '../ir/build.js';
import { setData } from '../ir/data.js';
import type { GraphEditor } from '../ir/editor.js';
import type { NameAllocator } from '../ir/names.js';
import { DataType, type NodeProto } from '../ir/onnx.js';
import { tensorBytes, toNumber, transposedBytes } from '../ir/tensor.js';
import type { Weight } from '../ir/weights.js';

function attribute(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  return a === undefined ? fallback : a.f !== undefined ? a.f : a.i !== undefined ? toNumber(a.i) : fallback;
}

/** Whether a Gemm computes plain A·B (+ C): no transA, alpha and beta 1. */
export function plainGemm(node: NodeProto): boolean {
  return attribute(node, 'transA', 0) === 0 && attribute(node, 'alpha', 1) === 1 && attribute(node, 'beta', 1) === 1;
}

/**
 * Rewrites the plain Gemms reading `weights` (float32 initializers read only by plain Gemms of the
 * main graph, all with the same transB) as MatMul, then Add of C under the Gemm's output name.
 * Returns the MatMuls made, and of those the ones followed by the Add of a bias.
 */
export function gemmsAsMatMul(g: GraphEditor, weights: Weight[], names: NameAllocator): { rewritten: number; withBias: Set<NodeProto> } {
  const graph = g.graph;
  let rewritten = 0;
  const withBias = new Set<NodeProto>();
  for (const w of weights) {
    const gemms = w.uses.map((u) => u.node);
    const fits =
      !w.constant &&
      w.home === graph &&
      w.otherUses.length === 0 &&
      !w.isGraphOutput &&
      w.tensor.data_type === DataType.FLOAT &&
      w.tensor.dims.length === 2 &&
      w.uses.every((u) => u.graph === graph && u.node.op_type === 'Gemm' && u.inputIndex === 1 && plainGemm(u.node)) &&
      new Set(gemms.map((n) => attribute(n, 'transB', 0))).size === 1 &&
      g.readers(w.name).every((n) => gemms.includes(n));
    if (!fits) continue;
    if (attribute(gemms[0]!, 'transB', 0) === 1) {
      const [n, k] = w.tensor.dims.map(Number) as [number, number];
      setData(w.tensor, transposedBytes(tensorBytes(w.tensor), n, k, 4));
      w.tensor.dims = [k, n];
    }
    for (const gemm of gemms) {
      const output = gemm.output[0]!;
      const bias = gemm.input[2];
      gemm.op_type = 'MatMul';
      gemm.attribute = [];
      g.setInputs(gemm, gemm.input.slice(0, 2));
      if (bias) {
        const product = names.fresh(`${output}_matmul`);
        g.setOutput(gemm, 0, product);
        g.insertNode(makeNode('Add', [product, bias], [output], names.fresh(`${gemm.name || output}_bias_Add`)), { after: gemm });
        withBias.add(gemm);
      }
      rewritten++;
    }
  }
  return { rewritten, withBias };
}
