// Calibration: what a layer's inputs look like on real data. The model is run in ONNX Runtime with
// the chosen layers' inputs exposed as extra outputs, and for each the Gram matrix XᵀX over all rows
// is accumulated: the curvature of the layer's output error, which GPTQ uses to decide how the
// rounding error of one input feature is compensated by the weights of the others, and the pruning
// passes use to score and update weights (Wanda, SparseGPT). Here, below the pass folders, so that
// quantize/ and prune/ share it.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelProto } from '../ir/onnx.js';
import { writeModel } from '../io/write.js';
import { Model } from '../ir/model.js';
import { loadEvalData } from './data.js';
import { OrtProcess } from './client.js';
import { checkFeeds } from './feeds.js';

export interface Calibration {
  /** XᵀX (K×K, row-major) of each requested value, whose last axis has K features. */
  gram: Map<string, { k: number; matrix: Float64Array; rows: number }>;
  samples: number;
  source: string;
}

/** Accumulates XᵀX of rows of length k into `g` (upper triangle; mirrored by the caller). */
function addGram(g: Float64Array, x: Float32Array, k: number): void {
  const rows = x.length / k;
  for (let r = 0; r < rows; r++) {
    const base = r * k;
    for (let i = 0; i < k; i++) {
      const xi = x[base + i]!;
      if (xi === 0) continue;
      const gi = i * k;
      for (let j = i; j < k; j++) g[gi + j]! += xi * x[base + j]!;
    }
  }
}

/** Runs `model` on the calibration data and returns XᵀX for each named value of the main graph. */
export async function calibrate(model: Model, names: string[], dataPath: string): Promise<Calibration> {
  const graph = model.graph;
  const existing = new Set(graph.output.map((o) => o.name));
  const wanted = [...new Set(names)];
  const extra = wanted.filter((n) => !existing.has(n));
  const proto: ModelProto = {
    ...model.proto,
    graph: { ...graph, output: [...graph.output, ...extra.map((name) => ({ name, metadata_props: [] }))] },
  };
  const probe = new Model(proto, model.source);
  const dir = mkdtempSync(join(tmpdir(), 'onnxpress-calibrate-'));
  // In a child process, as evaluation: a model that crashes ONNX Runtime fails in one line. No time
  // budget: --eval-timeout does not reach here, and a large calibration set may rightly take long.
  // The child starts now, while the probe is written; its messages cost little beside accumulating
  // the activations' Gram matrices here (bench/RESULTS.md, §"ONNX Runtime in a child process: what
  // it costs").
  const ort = new OrtProcess(Infinity);
  ort.prestart();
  try {
    const path = join(dir, 'probe.onnx');
    writeModel(probe, path);
    const label = model.source?.given ?? 'the model';
    const data = loadEvalData(model, { data: dataPath });
    for (const batch of data.batches) checkFeeds(model, label, batch.inputs);
    const session = await ort.load(path, label);
    const gram = new Map<string, { k: number; matrix: Float64Array; rows: number }>();
    for (const batch of data.batches) {
      const outputs = await ort.run(session, batch.inputs);
      for (const name of wanted) {
        const out = outputs.find((o) => o.name === name);
        if (!out || !(out.data instanceof Float32Array)) continue;
        const k = out.dims[out.dims.length - 1]!;
        let entry = gram.get(name);
        if (!entry) gram.set(name, (entry = { k, matrix: new Float64Array(k * k), rows: 0 }));
        addGram(entry.matrix, out.data, k);
        entry.rows += out.data.length / k;
      }
    }
    for (const { k, matrix } of gram.values()) {
      for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) matrix[i * k + j] = matrix[j * k + i]!;
    }
    return { gram, samples: data.samples, source: data.source };
  } finally {
    ort.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `calibration=` option's problem, if any: it must name a file or folder that exists (checked before the model is read). */
export function calibrationProblem(options: { readonly calibration?: string }): string | undefined {
  const path = options.calibration;
  if (typeof path !== 'string') return undefined;
  return existsSync(path) ? undefined : `calibration: ${path}: no such file or folder`;
}
