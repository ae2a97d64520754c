// Conformance of the round trip: every model.onnx under a folder (ONNX backend-test layout) is read
// and written back by onnxpress, then the original and the copy are run in ONNX Runtime on the
// stored inputs; the copy must give exactly the original's outputs.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { readModel } from '../io/read.js';
import { writeModel } from '../io/write.js';
import type { Model } from '../ir/model.js';
import { findTestDataSets, readTensorFile, type NamedArray } from '../io/testdata.js';
import { GraphIndex } from '../ir/graph.js';
import { OrtProcess, type RemoteSession } from '../runtime/client.js';
import { RuntimeFailure } from '../runtime/failure.js';

export type CaseStatus = 'pass' | 'fail' | 'skip';

export interface CaseResult {
  model: string;
  status: CaseStatus;
  /** Why it failed or was skipped. */
  reason?: string;
  /** Whether the written file is byte-identical to the original. */
  identical?: boolean;
  /** Data sets run. */
  sets: number;
  /** Where ONNX Runtime's own result for the original differs from the stored outputs (not a round-trip failure). */
  runtimeDiffers?: boolean;
}

export interface ConformanceReport {
  root: string;
  passed: number;
  failed: number;
  skipped: number;
  cases: CaseResult[];
}

export function findModels(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name === 'model.onnx') out.push(p);
    }
  };
  walk(root);
  return out;
}

function sameArray(a: NamedArray, b: NamedArray): boolean {
  if (a.dtype !== b.dtype || a.dims.join() !== b.dims.join() || a.data.length !== b.data.length) return false;
  if (Array.isArray(a.data)) return (a.data as string[]).every((v, i) => v === (b.data as string[])[i]);
  const x = a.data as Exclude<typeof a.data, string[]>,
    y = b.data as Exclude<typeof a.data, string[]>;
  return Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) === 0;
}

function close(actual: NamedArray, expected: NamedArray, rtol = 1e-3, atol = 1e-5): boolean {
  if (actual.dims.join() !== expected.dims.join() || actual.data.length !== expected.data.length) return false;
  if (Array.isArray(actual.data)) return sameArray(actual, expected);
  for (let i = 0; i < actual.data.length; i++) {
    const a = Number(actual.data[i]),
      e = Number(expected.data[i]);
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) return false;
  }
  return true;
}

/** ONNX Runtime's own words for a model it refused, else the whole line (a crash, the time budget). */
function why(e: unknown): string {
  if (e instanceof RuntimeFailure) return e.kind === 'load' || e.kind === 'run' ? e.detail : e.message;
  return (e as Error).message.split('\n')[0]!;
}

async function runCase(ort: OrtProcess, modelPath: string, root: string, scratch: string): Promise<CaseResult> {
  const name = relative(root, dirname(modelPath)) || '.';
  let identical: boolean | undefined;
  let copyPath: string;
  let model: Model;
  try {
    model = readModel(modelPath);
    const out = join(scratch, name.replace(/[\\/]/g, '__') + '.onnx');
    const written = writeModel(model, out);
    copyPath = written.model.path;
    if (model.source!.dataFiles.length === 0) identical = Buffer.compare(readFileSync(modelPath), readFileSync(copyPath)) === 0;
  } catch (e) {
    return { model: name, status: 'fail', reason: `round trip: ${(e as Error).message}`, sets: 0 };
  }
  if (identical === false) return { model: name, status: 'fail', reason: 'written file differs from the original', identical, sets: 0 };
  let original: RemoteSession, copy: RemoteSession;
  try {
    original = await ort.load(modelPath, name);
  } catch (e) {
    return { model: name, status: 'skip', reason: `ONNX Runtime cannot load the original: ${why(e)}`, identical, sets: 0 };
  }
  try {
    copy = await ort.load(copyPath, `${name} (copy)`);
  } catch (e) {
    return { model: name, status: 'fail', reason: `ONNX Runtime cannot load the copy: ${why(e)}`, identical, sets: 0 };
  }
  const index = new GraphIndex(model.graph);
  const inputs = index.realInputs();
  const sets = findTestDataSets(dirname(modelPath)).filter((d) => d !== dirname(modelPath));
  let runtimeDiffers = false;
  let count = 0;
  for (const set of sets) {
    const files = readdirSync(set);
    const feeds: NamedArray[] = [];
    for (let k = 0; k < inputs.length; k++) {
      const file = files.includes(`input_${k}.pb`) ? join(set, `input_${k}.pb`) : undefined;
      if (!file) continue;
      if (!inputs[k]!.type?.tensor_type)
        return { model: name, status: 'skip', reason: `input '${inputs[k]!.name}' is not a tensor`, identical, sets: count };
      feeds.push({ ...readTensorFile(file), name: inputs[k]!.name ?? '' });
    }
    let expectedOutputs: NamedArray[] = [];
    try {
      expectedOutputs = files
        .filter((f) => /^output_\d+\.pb$/.test(f))
        .sort((a, b) => Number(a.slice(7, -3)) - Number(b.slice(7, -3)))
        .map((f) => readTensorFile(join(set, f)));
    } catch {
      /* non-tensor outputs: compared through the runtime only */
    }
    let a: NamedArray[];
    try {
      a = await ort.run(original, feeds);
    } catch (e) {
      return { model: name, status: 'skip', reason: `ONNX Runtime cannot run the original: ${why(e)}`, identical, sets: count };
    }
    let b: NamedArray[];
    try {
      b = await ort.run(copy, feeds);
    } catch (e) {
      return { model: name, status: 'fail', reason: `ONNX Runtime cannot run the copy: ${why(e)}`, identical, sets: count };
    }
    for (let i = 0; i < a.length; i++) {
      if (!sameArray(a[i]!, b[i]!))
        return {
          model: name,
          status: 'fail',
          reason: `output '${a[i]!.name}' of the copy differs from the original's`,
          identical,
          sets: count,
        };
      const expected = expectedOutputs[i];
      if (expected && !close(a[i]!, expected)) runtimeDiffers = true;
    }
    count++;
  }
  return { model: name, status: 'pass', identical, sets: count, runtimeDiffers: runtimeDiffers || undefined };
}

export async function runConformance(root: string, onCase?: (r: CaseResult) => void): Promise<ConformanceReport> {
  if (!statSync(root).isDirectory()) throw new Error(`${root}: not a folder`);
  const scratch = mkdtempSync(join(tmpdir(), 'onnxpress-conformance-'));
  const cases: CaseResult[] = [];
  // One child runs every case, each with its own time budget; after a crash the next case starts another.
  const ort = new OrtProcess();
  try {
    for (const path of findModels(root)) {
      ort.restartBudget();
      const r = await runCase(ort, path, root, scratch);
      await ort.releaseAll();
      cases.push(r);
      onCase?.(r);
    }
  } finally {
    ort.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  const count = (s: CaseStatus) => cases.filter((c) => c.status === s).length;
  return { root, passed: count('pass'), failed: count('fail'), skipped: count('skip'), cases };
}
