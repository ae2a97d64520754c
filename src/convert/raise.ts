// Raising a model's opset imports to what a pass needs: adding a domain, or converting the model to
// a newer default opset (convert.ts).
import type { ModelProto } from '../ir/onnx.js';
import { minIrVersion, normalDomain, opsetVersion } from '../ir/opset.js';
import { toNumber } from '../ir/tensor.js';
import { convertOpset, conversionProblem } from './convert.js';

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
    throw new Error(
      `cannot raise the default opset from ${current} to ${version}: ${(e as Error).message.replace(/^cannot convert from opset \d+ to \d+: /, '')}`,
    );
  }
  return { domain: want, from: current, to: version };
}

/** Whether the default opset could be raised to `version`: undefined, or why not (the model is not changed). */
export function defaultOpsetProblem(model: ModelProto, version: number): string | undefined {
  const current = opsetVersion(model, '');
  if (current === undefined || current >= version) return undefined;
  const problem = conversionProblem(model, version);
  return (
    problem &&
    `cannot raise the default opset from ${current} to ${version}: ${problem.replace(/^cannot convert from opset \d+ to \d+: /, '')}`
  );
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
