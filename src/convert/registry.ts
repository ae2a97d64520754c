// Every default-domain definition change from opset 6 to 21 and what onnxpress does about it: an
// adapter, nothing (unchanged semantics), or a refusal.
import type { Adapter } from './adapter.js';
import * as inputs from './adapters/attributes-to-inputs.js';
import * as semantics from './adapters/semantics.js';
import * as opset7 from './adapters/opset7.js';
import { NOT_CONVERTED, UNCHANGED } from './unchanged.js';

export const ADAPTERS: readonly Adapter[] = [
  ...opset7.broadcast7,
  opset7.gemm7,
  opset7.batchNormalization7,
  opset7.dropout7,
  ...opset7.recurrent7,
  opset7.prelu7,
  inputs.clip11,
  inputs.pad11,
  inputs.slice10,
  inputs.topk10,
  inputs.reduceSum13,
  ...inputs.reduce18,
  inputs.split13,
  inputs.split18,
  inputs.squeeze13,
  inputs.unsqueeze13,
  inputs.dropout12,
  inputs.upsample9,
  semantics.softmax13,
  semantics.logSoftmax13,
  semantics.hardmax13,
  semantics.upsample10,
  semantics.resize11,
  semantics.batchNormalization9,
  semantics.batchNormalization14,
  semantics.dropout10,
  semantics.scatter11,
  semantics.roiAlign16,
  semantics.gridSample20,
  semantics.dft20,
  semantics.convTranspose11,
  semantics.groupNormalization21,
];

const byKey = new Map(ADAPTERS.map((a) => [`${a.op}@${a.version}`, a]));
const unchanged = new Map<string, string>();
for (const e of UNCHANGED) for (const v of e.versions) unchanged.set(`${e.op}@${v}`, e.what);

export type StepRule = { kind: 'adapter'; adapter: Adapter } | { kind: 'unchanged'; what: string } | { kind: 'refused'; reason?: string };

/** What converting a node of `op` to its definition of opset `version` takes. */
export function ruleFor(op: string, version: number): StepRule {
  const key = `${op}@${version}`;
  const adapter = byKey.get(key);
  if (adapter) return { kind: 'adapter', adapter };
  const what = unchanged.get(key);
  if (what !== undefined) return { kind: 'unchanged', what };
  return { kind: 'refused', reason: NOT_CONVERTED[key] };
}
