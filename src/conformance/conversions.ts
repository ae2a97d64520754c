// Checking conversions on ONNX backend-test models: each model.onnx under a folder is converted to
// each target opset, and the converted model is run in ONNX Runtime on the stored inputs of its
// test_data_set_0; its outputs must match the stored outputs (rtol 1e-3, atol 1e-7, as ONNX's
// backend runner) or, where ONNX Runtime differs from them for the original too, the original's.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { knownError } from '../errors.js';
import { readModel } from '../io/read.js';
import { findTestDataSets, readTensorFile, type NamedArray } from '../io/testdata.js';
import { writeModel } from '../io/write.js';
import { GraphIndex } from '../ir/graph.js';
import { opsetVersion } from '../ir/opset.js';
import { findModels } from './round-trip.js';
import { OrtProcess, type RemoteSession } from '../runtime/client.js';
import { RuntimeFailure } from '../runtime/failure.js';
import { conversionLine, convertOpset } from '../convert/convert.js';

export type CheckStatus = 'converted' | 'refused' | 'wrong' | 'skipped' | 'unchanged';

export interface CheckCase {
  model: string;
  from: number;
  to: number;
  status: CheckStatus;
  reason?: string;
  /** Checked against the stored outputs only (ONNX Runtime cannot run the original). */
  storedOnly?: boolean;
  /** What the adapters did ("Clip 6→13: min/max attributes to inputs ×1"). */
  adapted?: string[];
}

function close(actual: NamedArray, expected: NamedArray, rtol = 1e-3, atol = 1e-7): boolean {
  if (actual.dims.join() !== expected.dims.join() || actual.data.length !== expected.data.length) return false;
  for (let i = 0; i < actual.data.length; i++) {
    const a = actual.data[i],
      e = expected.data[i];
    if (typeof a === 'string' || typeof a === 'bigint') {
      if (a !== e) return false;
      continue;
    }
    const x = Number(a),
      y = Number(e);
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return false;
  }
  return true;
}

const allClose = (a: NamedArray[], b: NamedArray[]) => a.length === b.length && a.every((x, i) => close(x, b[i]!));

function why(e: unknown): string {
  if (e instanceof RuntimeFailure) return e.kind === 'load' || e.kind === 'run' ? e.detail : e.message;
  return (e as Error).message.split('\n')[0]!;
}

async function checkOne(ort: OrtProcess, path: string, root: string, target: number, scratch: string): Promise<CheckCase> {
  const name = relative(root, dirname(path)) || '.';
  const model = readModel(path);
  const from = opsetVersion(model.proto, '') ?? 0;
  const base = { model: name, from, to: target };
  if (from === 0) return { ...base, status: 'skipped', reason: 'no default-domain opset' };
  if (from >= target) return { ...base, status: 'unchanged' };
  const inputs = new GraphIndex(model.graph).realInputs();
  let adapted: string[];
  try {
    adapted = convertOpset(model, target).converted.map(conversionLine);
  } catch (e) {
    if (knownError(e)) return { ...base, status: 'refused', reason: (e as Error).message };
    return { ...base, status: 'wrong', reason: `internal error: ${(e as Error).message}` };
  }
  const out = join(scratch, `${name.replace(/[\\/]/g, '__')}.${target}.onnx`);
  writeModel(model, out);
  const set = findTestDataSets(dirname(path)).filter((d) => d !== dirname(path))[0];
  if (!set) return { ...base, status: 'skipped', reason: 'no test data' };
  const files = readdirSync(set);
  const feeds: NamedArray[] = [];
  for (let k = 0; k < inputs.length; k++) {
    if (!files.includes(`input_${k}.pb`)) continue;
    if (!inputs[k]!.type?.tensor_type) return { ...base, status: 'skipped', reason: 'an input is not a tensor' };
    feeds.push({ ...readTensorFile(join(set, `input_${k}.pb`)), name: inputs[k]!.name ?? '' });
  }
  let expected: NamedArray[];
  try {
    expected = files
      .filter((f) => /^output_\d+\.pb$/.test(f))
      .sort((a, b) => Number(a.slice(7, -3)) - Number(b.slice(7, -3)))
      .map((f) => readTensorFile(join(set, f)));
  } catch {
    return { ...base, status: 'skipped', reason: 'an output is not a tensor' };
  }
  // Where ONNX Runtime cannot run the original (no kernels for opset 6's Add, Gemm, ...), the stored outputs alone are the oracle.
  let a: NamedArray[] | undefined, originalFailure: string | undefined;
  try {
    const original: RemoteSession = await ort.load(path, name);
    a = await ort.run(original, feeds);
  } catch (e) {
    originalFailure = why(e);
    if (expected.length === 0)
      return {
        ...base,
        status: 'skipped',
        reason: `ONNX Runtime cannot run the original (${originalFailure}) and there are no stored outputs`,
      };
  }
  let b: NamedArray[];
  try {
    const converted = await ort.load(out, `${name} (opset ${target})`);
    b = await ort.run(converted, feeds);
  } catch (e) {
    // The same failure for both (an op ONNX Runtime lacks, at whatever version) says nothing of the conversion; another one does.
    const same = (text: string) => text.replace(/\(\d+\)/g, '(N)');
    if (originalFailure !== undefined && same(why(e)) === same(originalFailure))
      return { ...base, status: 'skipped', reason: `ONNX Runtime cannot run the original nor the converted model: ${originalFailure}` };
    return { ...base, status: 'wrong', adapted, reason: `ONNX Runtime cannot run the converted model: ${why(e)}` };
  }
  if (allClose(b, expected) || (a && allClose(b, a))) return { ...base, status: 'converted', adapted, ...(a ? {} : { storedOnly: true }) };
  return {
    ...base,
    status: 'wrong',
    adapted,
    reason: `outputs differ from the stored outputs${a ? " and from the original's in ONNX Runtime" : ''}`,
  };
}

export interface CheckReport {
  cases: CheckCase[];
  counts: Record<CheckStatus, number>;
  /** Refusals by the op named first in the reason. */
  refusedOps: Record<string, number>;
}

/** Converts every model.onnx under `root` to every target and checks each in ONNX Runtime. */
export async function checkConversions(root: string, targets: number[], onCase?: (c: CheckCase) => void): Promise<CheckReport> {
  const scratch = mkdtempSync(join(tmpdir(), 'onnxpress-convert-check-'));
  const ort = new OrtProcess(120);
  const cases: CheckCase[] = [];
  try {
    for (const path of findModels(root)) {
      for (const target of targets) {
        ort.restartBudget();
        let c: CheckCase;
        try {
          c = await checkOne(ort, path, root, target, scratch);
        } catch (e) {
          c = {
            model: relative(root, dirname(path)),
            from: 0,
            to: target,
            status: 'skipped',
            reason: `cannot read: ${(e as Error).message}`,
          };
        }
        await ort.releaseAll();
        cases.push(c);
        onCase?.(c);
      }
    }
  } finally {
    ort.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  const counts = { converted: 0, refused: 0, wrong: 0, skipped: 0, unchanged: 0 };
  const refusedOps: Record<string, number> = {};
  for (const c of cases) {
    counts[c.status]++;
    if (c.status === 'refused') {
      const m = /: (?:no adapter for )?(\w+) \d+→\d+|'(\w+)' is not an ONNX operator|: (\w+) (?:does not exist|is deprecated)/.exec(
        c.reason ?? '',
      );
      const op = m?.[1] ?? m?.[2] ?? m?.[3] ?? (/older than/.test(c.reason ?? '') ? `opset ${c.from}` : 'other');
      refusedOps[op] = (refusedOps[op] ?? 0) + 1;
    }
  }
  return { cases, counts, refusedOps };
}
