// What an adapter works with: the node, the graph (or function body) it sits in, fresh names,
// constants inserted before the node, and what is known of the element types and ranks of values.
import { DataType, type AttributeProto, type NodeProto } from '../ir/onnx.js';
import type { GraphEditor } from '../ir/editor.js';
import type { NameAllocator } from '../ir/names.js';
import { makeTensor, toNumber } from '../ir/tensor.js';
import type { ValueFacts } from './facts.js';
import { floatToHalf } from '../ir/half.js';
import { intAttribute, makeNode, stringAttribute, tensorAttribute } from '../ir/build.js';

/** The adapters build nodes as passes do. */
export { makeNode };

/** A list of nodes that adapters edit: a graph's, or a model-local function's body. */
export interface Site {
  nodes: NodeProto[];
  /** Names read after this list: the graph's or function's outputs. */
  outputs: Set<string>;
  /** Keeps who reads what current as adapters add nodes. */
  editor: GraphEditor;
  /** Element types and ranks known here (outer scopes included). */
  facts: ValueFacts;
  /** Where it is, for messages: 'graph', "function 'f'", "subgraph 'body' of node 'loop'". */
  where: string;
}

export class AdapterContext {
  constructor(
    readonly node: NodeProto,
    readonly site: Site,
    /** The opset the step goes to (the step is from `version - 1`). */
    readonly version: number,
    private readonly names: NameAllocator,
    /** Every node in the model, for "is this value read anywhere". */
    private readonly readers: (name: string) => boolean,
  ) {}

  fresh(base: string): string {
    return this.names.fresh(base);
  }

  /** Inserts `node` right before the node being converted. */
  insertBefore(node: NodeProto): void {
    this.site.editor.insertNode(node, { before: this.node });
  }

  /** Inserts `node` right after the node being converted. */
  insertAfter(node: NodeProto): void {
    this.site.editor.insertNode(node, { after: this.node });
  }

  /** Inserts a Constant node holding `values` before the node; returns its output's name. */
  constant(base: string, dataType: number, dims: number[], values: readonly (number | bigint)[]): string {
    const name = this.fresh(`${this.node.output[0] || this.node.name || this.node.op_type}_${base}`);
    const tensor = makeTensor(name, dataType, dims, encodeValues(dataType, values));
    this.insertBefore(makeNode('Constant', [], [name], this.fresh(`${name}_Constant`), [tensorAttribute('value', tensor)]));
    return name;
  }

  elemType(name: string): number | undefined {
    return this.site.facts.type(name);
  }

  rank(name: string): number | undefined {
    return this.site.facts.rank(name);
  }

  /** Whether anything reads the value: a node anywhere in the model, or the site's outputs. */
  isUsed(name: string): boolean {
    return name !== '' && (this.site.outputs.has(name) || this.readers(name));
  }
}

export function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function removeAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  const found = attribute(node, name);
  if (found) node.attribute = node.attribute.filter((a) => a !== found);
  return found;
}

export function intsOf(a: AttributeProto | undefined): number[] | undefined {
  return a ? a.ints.map((v) => toNumber(v)) : undefined;
}

export function intOf(a: AttributeProto | undefined): number | undefined {
  return a?.i === undefined ? undefined : toNumber(a.i);
}

export function stringOf(a: AttributeProto | undefined): string | undefined {
  return a?.s === undefined ? undefined : new TextDecoder().decode(a.s);
}

export function setIntAttribute(node: NodeProto, name: string, value: number): void {
  removeAttribute(node, name);
  node.attribute.push(intAttribute(name, value));
}

export function setStringAttribute(node: NodeProto, name: string, value: string): void {
  removeAttribute(node, name);
  node.attribute.push(stringAttribute(name, value));
}

/** Little-endian raw_data for values of a numeric type. */
export function encodeValues(dataType: number, given: readonly (number | bigint)[]): Uint8Array {
  // int64 values stay exact: attribute values that do not fit a double arrive as bigint.
  if (dataType === DataType.INT64) return new Uint8Array(BigInt64Array.from(given, (v) => BigInt.asIntN(64, BigInt(v))).buffer);
  const values = given.map(Number);
  switch (dataType) {
    case DataType.FLOAT:
      return new Uint8Array(Float32Array.from(values).buffer);
    case DataType.DOUBLE:
      return new Uint8Array(Float64Array.from(values).buffer);
    case DataType.FLOAT16:
      return new Uint8Array(Uint16Array.from(values, floatToHalf).buffer);
    case DataType.INT32:
      return new Uint8Array(Int32Array.from(values).buffer);
    default:
      throw new Error(`encodeValues: type ${dataType} not supported`);
  }
}
