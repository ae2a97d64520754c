// Fresh names for values and nodes a pass adds, guaranteed not to collide with any name in the model.
import type { ModelProto } from './onnx.js';
import { forEachGraph } from './walk.js';

export class NameAllocator {
  private readonly used = new Set<string>();

  constructor(model: { proto: ModelProto }) {
    forEachGraph(model.proto, ({ graph }) => {
      for (const v of [...graph.input, ...graph.output, ...graph.value_info]) this.used.add(v.name ?? '');
      for (const t of graph.initializer) this.used.add(t.name ?? '');
      for (const s of graph.sparse_initializer) this.used.add(s.values?.name ?? '');
      for (const n of graph.node) {
        for (const o of n.output) this.used.add(o);
        for (const i of n.input) this.used.add(i);
        if (n.name) this.used.add(n.name);
      }
    });
    for (const f of model.proto.functions) for (const n of f.node) for (const o of n.output) this.used.add(o);
  }

  /** `base` if free, else `base_2`, `base_3`, ... */
  fresh(base: string): string {
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}
