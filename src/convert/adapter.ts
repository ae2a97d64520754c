// The adapter contract: one op's change of definition at one opset, applied to one node.
import type { AdapterContext } from './context.js';

export interface AdapterResult {
  /** What was done to this node when it differs from the adapter's usual description. */
  how?: string;
  /** Why this node cannot be converted; the adapter must not have changed anything then. */
  refused?: string;
}

export interface Adapter {
  op: string;
  /** The opset at which the op's definition changed: the adapter takes a node from the definition before it to this one. */
  version: number;
  /** What it does, for summaries and the README's table ("min/max attributes to inputs"). */
  how: string;
  /** Converts the node in place (inserting nodes before it, renaming its op); returns a refusal to leave it as it was. */
  apply(ctx: AdapterContext): AdapterResult | undefined;
}
