// Structural limits on a model, checked as it is read: before any pass walks it and before ONNX
// Runtime sees it. A file of a few kilobytes can describe a structure that ONNX Runtime 1.30 cannot
// survive: it crashes (SIGSEGV, stack overflow) on long chains of model-local functions, and needs
// minutes or all memory for functions that call the next one twice (the node count doubles with each
// level once inlined). Measured: bench/RESULTS.md, §"Structural limits against ONNX Runtime 1.30".
import { subgraphsOf } from './walk.js';
import { InputError } from '../errors.js';
import type { FunctionProto, GraphProto, ModelProto, NodeProto } from './onnx.js';
import { normalDomain } from './opset.js';

/**
 * Model-local functions calling functions, this deep at most. Exporters nest functions by module
 * (a few levels; ten is already rare); ONNX Runtime 1.30 loads this depth quickly, but its time grows
 * with the square of the depth and it crashes (stack overflow) at a few times this depth with a 1 MiB
 * stack (bench/RESULTS.md, §"Structural limits against ONNX Runtime 1.30").
 */
export const MAX_FUNCTION_DEPTH = 100;

/**
 * If/Loop/Scan bodies inside bodies, this deep at most, counted through function calls (a body
 * inlined where it is called nests as deep as the call). Real models nest a few levels; ONNX
 * Runtime loads this depth quickly, but deeper nesting takes it seconds, then tens of seconds
 * (bench/RESULTS.md, §"Structural limits against ONNX Runtime 1.30").
 */
export const MAX_SUBGRAPH_DEPTH = 64;

/**
 * Nodes, this many at most: in the graph, its subgraphs and the functions (each body once), and
 * again with every function call replaced by the function's nodes, as ONNX Runtime inlines them.
 * The largest real exports have ~200,000; a million Identity nodes already cost over a gigabyte to
 * copy and end in bad_alloc in ONNX Runtime (bench/RESULTS.md, §"Structural limits against ONNX
 * Runtime 1.30").
 */
export const MAX_NODES = 500_000;

/** A function's name as errors show it: domain:name, and :overload where it has one. */
const key = (domain: string | undefined, name: string | undefined, overload: string | undefined) =>
  [normalDomain(domain), name ?? '', overload ?? ''].filter((part, i) => part !== '' || i === 1).join(':');

/** What one body (a graph or a function) holds, subgraphs included. */
interface Body {
  /** Its nodes, subgraph nodes included. */
  nodes: number;
  /** Of those, the calls to model-local functions, with the subgraph depth each sits at. */
  calls: { callee: string; depth: number }[];
  /** The deepest subgraph nesting inside it. */
  depth: number;
}

// Subgraphs nest at most ~33 deep here: the decoder refuses messages nested past 100 levels.
function summarize(nodes: NodeProto[], functions: Map<string, FunctionProto>, body: Body, depth: number): void {
  body.depth = Math.max(body.depth, depth);
  for (const node of nodes) {
    body.nodes++;
    const callee = key(node.domain, node.op_type, node.overload);
    if (functions.has(callee)) body.calls.push({ callee, depth });
    for (const g of subgraphsOf(node)) summarize(g.node, functions, body, depth + 1);
  }
}

interface Totals {
  /** The longest chain of calls starting here (1 for a function that calls none). */
  calls: number;
  /** The deepest subgraph nesting, counted through calls. */
  depth: number;
  /** Nodes with every call replaced by the callee's nodes. */
  expanded: number;
}

/** Totals of every function, by an explicit stack (a chain of 20,000 functions would overflow recursion). */
function functionTotals(bodies: Map<string, Body>, where: string): Map<string, Totals> {
  const done = new Map<string, Totals>();
  const onPath = new Set<string>();
  for (const root of bodies.keys()) {
    if (done.has(root)) continue;
    const stack: { fn: string; next: number }[] = [{ fn: root, next: 0 }];
    onPath.add(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const body = bodies.get(top.fn)!;
      const call = body.calls[top.next++];
      if (call) {
        if (done.has(call.callee)) continue;
        if (onPath.has(call.callee)) {
          const cycle = [...stack.slice(stack.findIndex((s) => s.fn === call.callee)).map((s) => s.fn), call.callee];
          throw new InputError(
            `${where}: model-local function '${call.callee}' calls itself (${cycle.join(' -> ')}); ONNX does not allow recursion`,
          );
        }
        onPath.add(call.callee);
        stack.push({ fn: call.callee, next: 0 });
        continue;
      }
      const totals: Totals = { calls: 1, depth: body.depth, expanded: body.nodes - body.calls.length };
      for (const c of body.calls) {
        const t = done.get(c.callee)!;
        totals.calls = Math.max(totals.calls, t.calls + 1);
        totals.depth = Math.max(totals.depth, c.depth + t.depth);
        totals.expanded += t.expanded;
      }
      done.set(top.fn, totals);
      onPath.delete(top.fn);
      stack.pop();
    }
  }
  return done;
}

const count = (n: number) => (n < 1e15 ? String(n) : `about ${n.toExponential(1)}`);

/** Throws an InputError when the model exceeds a limit above; `where` names it. */
export function checkLimits(model: ModelProto, where: string): void {
  const functions = new Map(model.functions.map((f) => [key(f.domain, f.name, f.overload), f]));
  const bodies = new Map<string, Body>();
  let declared = 0;
  for (const [name, f] of functions) {
    const body: Body = { nodes: 0, calls: [], depth: 0 };
    summarize(f.node, functions, body, 0);
    bodies.set(name, body);
    declared += body.nodes;
  }
  const graphs = [model.graph, ...model.training_info.flatMap((t) => [t.initialization, t.algorithm])].filter(
    (g): g is GraphProto => g !== undefined,
  );
  const mains = graphs.map((g) => {
    const body: Body = { nodes: 0, calls: [], depth: 0 };
    summarize(g.node, functions, body, 0);
    declared += body.nodes;
    return body;
  });
  if (declared > MAX_NODES)
    throw new InputError(`${where}: ${declared} nodes (graph, subgraphs and local functions), over the limit of ${MAX_NODES}`);
  const totals = functionTotals(bodies, where);
  let calls = 0,
    depth = 0,
    expanded = 0;
  for (const t of totals.values()) {
    calls = Math.max(calls, t.calls);
    depth = Math.max(depth, t.depth);
  }
  for (const body of mains) {
    depth = Math.max(depth, body.depth);
    expanded += body.nodes - body.calls.length;
    for (const c of body.calls) {
      const t = totals.get(c.callee)!;
      depth = Math.max(depth, c.depth + t.depth);
      expanded += t.expanded;
    }
  }
  if (calls > MAX_FUNCTION_DEPTH)
    throw new InputError(`${where}: model-local functions call each other ${calls} deep, over the limit of ${MAX_FUNCTION_DEPTH}`);
  if (depth > MAX_SUBGRAPH_DEPTH)
    throw new InputError(
      `${where}: subgraphs (If/Loop/Scan bodies) nested ${depth} deep, counting through function calls, over the limit of ${MAX_SUBGRAPH_DEPTH}`,
    );
  if (expanded > MAX_NODES)
    throw new InputError(
      `${where}: ${count(expanded)} nodes once its local functions are expanded where they are called, over the limit of ${MAX_NODES}`,
    );
}
