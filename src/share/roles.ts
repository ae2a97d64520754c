// A weight's role: how it is used, and by nodes named how, up to layer numbers. Exporters name a
// layer's nodes by its path (/blocks.3/attn/q/MatMul), so with the numbers blanked out every
// block's query projection has the same role and the key projection another.
import type { Weight } from '../ir/weights.js';

/** The name with every run of digits replaced by '#'. */
export function layerless(name: string): string {
  return name.replace(/\d+/g, '#');
}

export function roleOf(w: Weight): string {
  const uses = new Set(
    w.uses.map((u) => `${u.role}${u.role === 'gemm' && u.outputAxis === 0 ? '(transB)' : ''}:${layerless(u.node.name ?? '')}`),
  );
  return [...uses].sort().join(',');
}
