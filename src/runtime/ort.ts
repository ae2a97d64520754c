// Running models in ONNX Runtime (onnxruntime-node) in this process: the only way a number in a
// report is measured. onnxpress itself does it in a child process (child.ts uses this
// module), where a model that crashes or hangs ONNX Runtime cannot take onnxpress down; the tests
// call it directly.
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import { DataType } from '../ir/onnx.js';
import { dtypeInfo, dtypeName } from '../ir/dtype.js';
import type { ArrayData, NamedArray } from '../io/testdata.js';

const FROM_ORT: Record<string, number> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  int16: DataType.INT16,
  uint16: DataType.UINT16,
  int32: DataType.INT32,
  uint32: DataType.UINT32,
  int64: DataType.INT64,
  uint64: DataType.UINT64,
  bool: DataType.BOOL,
  string: DataType.STRING,
  float16: DataType.FLOAT16,
  int4: DataType.INT4,
  uint4: DataType.UINT4,
};

export interface SessionOptions {
  threads?: number;
  /**
   * Whether ONNX Runtime's intra-op threads spin between tasks (its default). Off for throughput
   * work on several threads (calibration): on a machine whose cores are busy, spinning threads
   * measured twice as slow as one thread, sleeping ones faster than one.
   */
  spinning?: boolean;
  /**
   * Whether ONNX Runtime repacks the weights of MatMul-like nodes for its kernels as the session is
   * created (its default). Off for sessions that run a few batches and close (the passes' checks):
   * the repacking is then most of the creation's cost (bench/RESULTS.md, "Checks' sessions without
   * weight prepacking").
   */
  prepack?: boolean;
}

// Loaded on first use: the native runtime takes a while to load, and most commands never run a model.
// By require, not import(), so that code run from V8's code cache (bin/load-cli.mjs), whose
// functions cannot call import(), may use it too.
let ort: typeof Ort | undefined;

export async function runtime(): Promise<typeof Ort> {
  if (!ort) {
    // Read by the native library as it loads: without it, ONNX Runtime writes /tmp/mat-debug-PID.log
    // and files under ~/.cache/Microsoft/DeveloperTools for every process that loads it.
    process.env.ORT_DISABLE_TELEMETRY = '1';
    ort = createRequire(import.meta.url)('onnxruntime-node') as typeof Ort;
    ort.env.logLevel = 'fatal';
  }
  return ort;
}

export async function createSession(path: string, options: SessionOptions = {}): Promise<Ort.InferenceSession> {
  return (await runtime()).InferenceSession.create(path, {
    intraOpNumThreads: options.threads ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 4,
    extra: {
      session: {
        ...(options.spinning === false ? { intra_op: { allow_spinning: '0' } } : {}),
        ...(options.prepack === false ? { disable_prepacking: '1' } : {}),
      },
    },
  });
}

export function toOrtTensor(a: NamedArray): Ort.Tensor {
  if (!ort) throw new Error('create a session before making tensors');
  const type = dtypeInfo(a.dtype)?.ort;
  if (!type) throw new Error(`ONNX Runtime for Node cannot take ${dtypeName(a.dtype)} inputs`);
  return new ort.Tensor(type as 'float32', a.data as Float32Array, a.dims);
}

export function fromOrtTensor(name: string, t: Ort.Tensor): NamedArray {
  const dtype = FROM_ORT[t.type];
  if (dtype === undefined) throw new Error(`unsupported output type ${t.type}`);
  return { name, dtype, dims: [...t.dims], data: t.data as ArrayData };
}

/** Named inputs as session.run takes them. */
export function toFeeds(inputs: NamedArray[]): Record<string, Ort.Tensor> {
  const feeds: Record<string, Ort.Tensor> = {};
  for (const a of inputs) feeds[a.name] = toOrtTensor(a);
  return feeds;
}

/** Runs a session on named inputs; returns every output in the session's output order. */
export async function run(session: Ort.InferenceSession, inputs: NamedArray[]): Promise<NamedArray[]> {
  const results = await session.run(toFeeds(inputs));
  return session.outputNames.map((name) => fromOrtTensor(name, results[name]!));
}
