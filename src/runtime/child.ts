// The child process that runs ONNX Runtime for onnxpress (client.ts forks it): a model that crashes
// ONNX Runtime or runs forever (session.run blocks this thread until it returns) takes this process
// down, not onnxpress, which reports it in one line. Bundled as dist/ort-child.mjs.
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';
import { createSession, run, runtime, toFeeds } from './ort.js';
import { addExtremes, addToHistogram, emptyExtremes, HISTOGRAM_SLOTS, mergeExtremes } from '../kernels/activation-stats.js';
import { FidelityAccumulator } from '../kernels/fidelity.js';
import type { Collected, CollectResult, Compared, Reply, Request, Summed } from './protocol.js';

const sessions = new Map<number, Ort.InferenceSession>();
let loaded = 0;

function session(id: number): Ort.InferenceSession {
  const s = sessions.get(id);
  if (!s) throw new Error(`no session ${id}`);
  return s;
}

const send = (reply: Reply) => process.send!(reply);

async function time(request: Extract<Request, { op: 'time' }>): Promise<number[][]> {
  const feeds = toFeeds(request.inputs);
  const chosen = request.sessions.map(session);
  for (let i = 0; i < request.warmup; i++) for (const s of chosen) await s.run(feeds);
  const times = chosen.map((): number[] => []);
  // The sessions take turns, so that drift in machine load affects each alike.
  for (let i = 0; i < request.runs; i++) {
    for (let k = 0; k < chosen.length; k++) {
      const t = performance.now();
      await chosen[k]!.run(feeds);
      times[k]!.push(performance.now() - t);
    }
    send({ id: request.id, tick: true });
  }
  return times;
}

/** Output sums, per session ('sum' requests). */
const sums = new Map<number, Summed>();

async function sum(request: Extract<Request, { op: 'sum' }>): Promise<null> {
  let s = sums.get(request.session);
  if (!s) sums.set(request.session, (s = Object.create(null) as Summed));
  const results = await session(request.session).run(toFeeds(request.inputs));
  try {
    for (const gram of request.grams ?? []) {
      const x = results[gram.value];
      if (!x) continue;
      const sessionOfGram = session(gram.session);
      const out = await sessionOfGram.run({ [sessionOfGram.inputNames[0]!]: x });
      try {
        add(s, gram.into, out[sessionOfGram.outputNames[0]!]!.data);
      } finally {
        for (const t of Object.values(out)) t.dispose();
      }
    }
    for (const name of request.names) add(s, name, results[name]?.data);
  } finally {
    for (const t of Object.values(results)) t.dispose();
  }
  return null;
}

/** Adds an output's values to the sum `name` (float outputs in float64, int64 ones in int64). */
function add(s: Summed, name: string, data: unknown): void {
  const have = s[name];
  if (data instanceof BigInt64Array) {
    if (!have) s[name] = BigInt64Array.from(data);
    else if (have instanceof BigInt64Array && have.length === data.length) for (let i = 0; i < data.length; i++) have[i]! += data[i]!;
  } else if (data instanceof Float64Array || data instanceof Float32Array) {
    if (!have) s[name] = Float64Array.from(data);
    else if (have instanceof Float64Array && have.length === data.length) for (let i = 0; i < data.length; i++) have[i]! += data[i]!;
  }
}

/** Statistics of outputs, per session, kept here so that the activations never cross to onnxpress. */
const collections = new Map<number, Collected>();

async function collect(request: Extract<Request, { op: 'collect' }>): Promise<CollectResult> {
  let c = collections.get(request.session);
  if (!c) collections.set(request.session, (c = { extremes: Object.create(null), histograms: Object.create(null), nonFinite: [] }));
  const results = await session(request.session).run(toFeeds(request.inputs));
  let bytes = 0;
  for (const r of request.reductions ?? []) {
    const min = Number(results[r.min]?.data[0]),
      max = Number(results[r.max]?.data[0]),
      size = Number(results[r.size]?.data[0]);
    bytes += size * 4;
    if (size === 0) continue;
    if (!Number.isFinite(min) || !Number.isFinite(max)) {
      if (!c.nonFinite.includes(r.name)) c.nonFinite.push(r.name);
      continue;
    }
    mergeExtremes((c.extremes[r.name] ??= emptyExtremes()), { min, max, count: size });
  }
  for (const name of request.names) {
    const data = results[name]?.data;
    if (!(data instanceof Float32Array)) continue;
    bytes += data.byteLength;
    const absMax = request.histograms?.[name];
    if (absMax === undefined) addExtremes((c.extremes[name] ??= emptyExtremes()), data);
    else addToHistogram((c.histograms[name] ??= new Float64Array(HISTOGRAM_SLOTS)), absMax, data);
  }
  // The outputs' native memory goes now, not at the next collection of garbage.
  for (const t of Object.values(results)) t.dispose();
  return { bytes };
}

/** First group of a comparison: small, until the values' sizes are known. */
const FIRST_GROUP = 16;

async function compare(request: Extract<Request, { op: 'compare' }>): Promise<Compared> {
  const feeds = toFeeds(request.inputs);
  const reference = session(request.reference),
    candidate = session(request.candidate);
  const out: Compared = Object.create(null);
  let largest = 0;
  for (let i = 0; i < request.names.length; ) {
    const group = request.names.slice(i, i + (largest === 0 ? FIRST_GROUP : Math.max(1, Math.floor(request.budgetBytes / largest))));
    i += group.length;
    const a = await reference.run(feeds, group);
    const b = await candidate.run(feeds, group);
    for (const name of group) {
      const x = a[name]?.data,
        y = b[name]?.data;
      if (x instanceof Float32Array) largest = Math.max(largest, x.byteLength);
      if (!(x instanceof Float32Array) || !(y instanceof Float32Array) || x.length !== y.length) continue;
      const acc = new FidelityAccumulator();
      acc.add(x, y);
      out[name] = acc.result();
    }
    for (const t of [...Object.values(a), ...Object.values(b)]) t.dispose();
  }
  return out;
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case 'load': {
      sessions.set(
        ++loaded,
        await createSession(request.path, { threads: request.threads, spinning: request.spinning, prepack: request.prepack }),
      );
      return loaded;
    }
    case 'run':
      return run(session(request.session), request.inputs);
    case 'time':
      return time(request);
    case 'release':
      await session(request.session).release();
      collections.delete(request.session);
      sums.delete(request.session);
      return sessions.delete(request.session);
    case 'collect':
      return collect(request);
    case 'compare':
      return compare(request);
    case 'sum':
      return sum(request);
    case 'summed': {
      const s = sums.get(request.session) ?? {};
      if (!request.names) {
        sums.delete(request.session);
        return s;
      }
      const some: Summed = {};
      for (const name of request.names) {
        if (s[name]) some[name] = s[name];
        delete s[name];
      }
      return some;
    }
    case 'collected': {
      const c = collections.get(request.session) ?? { extremes: {}, histograms: {}, nonFinite: [] };
      collections.delete(request.session);
      return c;
    }
  }
}

/**
 * Ends this process when onnxpress is gone. onnxpress kills its child as it exits, but when it is
 * killed outright (SIGKILL, the out-of-memory killer) nothing does, and a model that runs forever
 * would keep this process busy forever. The main thread may be blocked in session.run, so a
 * thread of its own watches the parent.
 */
function watchParent(): void {
  const code = `const { workerData: w } = require('node:worker_threads');
setInterval(() => { if (process.ppid !== w.parent) process.kill(w.pid, 'SIGKILL'); }, 500);`;
  new Worker(code, { eval: true, workerData: { parent: process.ppid, pid: process.pid } }).unref();
}

process.on('message', (request: Request) => {
  handle(request).then(
    (result) => send({ id: request.id, result }),
    (e: unknown) => send({ id: request.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
// onnxpress closed the channel (its evaluation is done, or it exited).
process.on('disconnect', () => process.exit(0));
watchParent();
// Loaded now, while onnxpress is still reading the models and the data.
void runtime();
