// Op types a model uses (default domain), for opset decisions.
import type { Model } from '../ir/model.js';
import { normalDomain } from '../ir/opset.js';
import { forEachGraph } from '../ir/walk.js';

export function usedOps(model: Model): Set<string> {
  const ops = new Set<string>();
  forEachGraph(model.proto, ({ graph }) => {
    for (const n of graph.node) if (normalDomain(n.domain) === '') ops.add(n.op_type ?? '');
  });
  for (const f of model.proto.functions) for (const n of f.node) if (normalDomain(n.domain) === '') ops.add(n.op_type ?? '');
  return ops;
}

export function parseOpList(text: string): Set<string> {
  return new Set(
    text
      .split(/[,|]/)
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
}
