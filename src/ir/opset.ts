// Opset imports: which operator-set version each domain is bound to, and adding what a pass needs.
import type { ModelProto } from '../io/types.js';
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

/**
 * Ops whose meaning changed between default-domain opsets in ways that would break a model if
 * only the version number were raised (attributes moved to inputs, changed defaults or semantics).
 * Changes that only add an optional input or attribute (Split 18, Pad 18, TopK 11, Resize 18/19,
 * BatchNormalization 14/15 for inference) are not listed: an older model stays valid.
 * Raising the default opset refuses when the model uses any of them below the version that changed.
 */
const BREAKING_CHANGES: Record<string, number[]> = {
  Split: [13], Squeeze: [13], Unsqueeze: [13], ReduceSum: [13], ReduceMean: [18], ReduceMax: [18],
  ReduceMin: [18], ReduceProd: [18], ReduceL1: [18], ReduceL2: [18], ReduceLogSum: [18],
  ReduceLogSumExp: [18], ReduceSumSquare: [18], Pad: [11], Clip: [11], Slice: [10], TopK: [10],
  Resize: [11, 13], Upsample: [9, 10], Dropout: [12], BatchNormalization: [9], Softmax: [13],
  LogSoftmax: [13], Hardmax: [13], Scatter: [11], Reshape: [5], Tile: [6], GroupNormalization: [21],
};

export interface OpsetChange {
  domain: string;
  from?: number;
  to: number;
}

/**
 * Makes sure `domain` is imported at `version` or higher. Adding a domain is always safe; raising
 * the default domain's version is done only when no op the model uses changed meaning in between.
 * Returns what changed, or throws naming the op that prevents it.
 */
export function ensureOpset(model: ModelProto, domain: string, version: number, usedOps: Iterable<string> = []): OpsetChange | undefined {
  const want = normalDomain(domain);
  const entry = model.opset_import.find((o) => normalDomain(o.domain) === want);
  if (!entry) {
    model.opset_import.push({ domain: want, version });
    return { domain: want, to: version };
  }
  const current = entry.version === undefined ? 1 : toNumber(entry.version);
  if (current >= version) return undefined;
  if (want === '') {
    for (const op of usedOps) {
      const breaking = BREAKING_CHANGES[op]?.find((v) => v > current && v <= version);
      if (breaking !== undefined) throw new Error(`cannot raise the default opset from ${current} to ${version}: ${op} changed at opset ${breaking}`);
    }
  } else throw new Error(`cannot raise domain '${want}' from ${current} to ${version}`);
  entry.version = version;
  return { domain: want, from: current, to: version };
}

/** The lowest IR version whose models may import a given default-domain opset (ONNX's versioning table). */
export function minIrVersion(opset: number): number {
  const table: [number, number][] = [[23, 11], [21, 10], [19, 9], [15, 8], [12, 7], [11, 6], [10, 5], [9, 4]];
  for (const [op, ir] of table) if (opset >= op) return ir;
  return 3;
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
