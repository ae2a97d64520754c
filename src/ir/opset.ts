// Opset imports: which operator-set version each domain is bound to, and adding what a pass needs.
import type { ModelProto } from './onnx.js';
import { convertOpset, conversionProblem } from '../convert/convert.js';
import { toNumber } from './tensor.js';

/** '' and 'ai.onnx' name the same default domain. */
export function normalDomain(domain: string | undefined): string {
  return domain === 'ai.onnx' || domain === undefined ? '' : domain;
}

export function opsetVersion(model: ModelProto, domain: string): number | undefined {
  const want = normalDomain(domain);
  const entry = model.opset_import.find((o) => normalDomain(o.domain) === want);
  return entry?.version === undefined ? undefined : toNumber(entry.version);
}

export interface OpsetChange {
  domain: string;
  from?: number;
  to: number;
}

/**
 * Makes sure `domain` is imported at `version` or higher. Adding a domain is always safe; raising
 * the default domain's version converts the model (src/convert: every node whose op changed
 * meaning in between is adapted, in place). Returns what changed, or throws naming what prevents it
 * (an op with no adapter), leaving the model as it was. `usedOps` is no longer needed (kept for callers).
 */
export function ensureOpset(model: ModelProto, domain: string, version: number, usedOps: Iterable<string> = []): OpsetChange | undefined {
  void usedOps;
  const want = normalDomain(domain);
  const entry = model.opset_import.find((o) => normalDomain(o.domain) === want);
  if (!entry) {
    model.opset_import.push({ domain: want, version });
    return { domain: want, to: version };
  }
  const current = entry.version === undefined ? 1 : toNumber(entry.version);
  if (current >= version) return undefined;
  if (want !== '') throw new Error(`cannot raise domain '${want}' from ${current} to ${version}`);
  try {
    convertOpset({ proto: model }, version);
  } catch (e) {
    throw new Error(`cannot raise the default opset from ${current} to ${version}: ${(e as Error).message.replace(/^cannot convert from opset \d+ to \d+: /, '')}`);
  }
  return { domain: want, from: current, to: version };
}

/** The lowest IR version whose models may import a given default-domain opset (ONNX's versioning table). */
export function minIrVersion(opset: number): number {
  const table: [number, number][] = [[23, 11], [21, 10], [19, 9], [15, 8], [12, 7], [11, 6], [10, 5], [9, 4]];
  for (const [op, ir] of table) if (opset >= op) return ir;
  return 3;
}

/** Whether the default opset could be raised to `version`: undefined, or why not (the model is not changed). */
export function defaultOpsetProblem(model: ModelProto, version: number): string | undefined {
  const current = opsetVersion(model, '');
  if (current === undefined || current >= version) return undefined;
  const problem = conversionProblem(model, version);
  return problem && `cannot raise the default opset from ${current} to ${version}: ${problem.replace(/^cannot convert from opset \d+ to \d+: /, '')}`;
}

/**
 * Like ensureOpset for the default domain, and also raises the model's IR version when the new
 * opset needs it (never lowers it).
 */
export function requireDefaultOpset(model: ModelProto, version: number, usedOps: Iterable<string>): OpsetChange | undefined {
  const change = ensureOpset(model, '', version, usedOps);
  const ir = toNumber(model.ir_version ?? 3);
  const need = minIrVersion(opsetVersion(model, '') ?? version);
  if (ir < need) model.ir_version = need;
  return change;
}
