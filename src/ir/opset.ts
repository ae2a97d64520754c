// Opset imports: which operator-set version each domain is bound to (raising one: convert/raise.ts).
import type { ModelProto } from './onnx.js';
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

/** The lowest IR version whose models may import a given default-domain opset (ONNX's versioning table). */
export function minIrVersion(opset: number): number {
  const table: [number, number][] = [
    [23, 11],
    [21, 10],
    [19, 9],
    [15, 8],
    [12, 7],
    [11, 6],
    [10, 5],
    [9, 4],
  ];
  for (const [op, ir] of table) if (opset >= op) return ir;
  return 3;
}
