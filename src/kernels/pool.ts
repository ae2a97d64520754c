// Running kernels on worker threads: quantization, magnitude pruning, k-means clustering and
// dedup's fingerprints, every kind of job alike (jobs.ts lists them). Each tensor is one job;
// results come back in the order the tensors were given, so a pass applies them exactly as it
// would on one thread (and the output is byte-identical whatever the thread count). At most
// windowFor(threads) tensors are in flight.
// A job reports its progress as it runs (see progress.ts), and a pass's bar counts it then: a
// large tensor moves the bar slab by slab, and one done out of order counts when it is done.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { InputError, OutputError, ResourceError, UsageError } from '../errors.js';
import { packagePath } from '../paths.js';
import { inMemory, inputBytes } from './job.js';
import { execute, inputOf, withInput, type KernelJob, type KernelResult, type ResultOf } from './jobs.js';
import type { JobProgress, Progress } from './progress.js';

/** A job's size, for the largest-first order. */
function sizeOf(job: KernelJob): number {
  return inputBytes(inputOf(job));
}

/**
 * A job's progress as a worker sends it: only steps of at least 1/256 of the job (per-channel
 * clustering reports after each channel, thousands of them) and the end.
 */
export function throttled(send: JobProgress): JobProgress {
  let told = 0;
  return (f) => {
    if (f - told >= 1 / 256 || (f >= 1 && told < 1)) {
      told = f;
      send(f);
    }
  };
}

/** A job's error as plain data for postMessage (which keeps neither class nor exit code). */
export interface JobError {
  name: string;
  message: string;
}

export function jobError(e: unknown): JobError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

/** The error a worker sent back, as the class it was thrown as where that is one of ours. */
function rebuilt({ name, message }: JobError): Error {
  if (name === 'InputError') return new InputError(message);
  if (name === 'OutputError') return new OutputError(message);
  if (name === 'UsageError') return new UsageError(message);
  if (name === 'ResourceError') return new ResourceError(message);
  const e = new Error(message);
  e.name = name;
  return e;
}

/** The array buffers of a result, to hand over to the other thread instead of copying them. */
export function buffersOf(result: KernelResult): ArrayBuffer[] {
  const found = new Set<ArrayBufferLike>();
  const visit = (v: unknown) => {
    if (ArrayBuffer.isView(v)) found.add(v.buffer);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(result);
  return [...found] as ArrayBuffer[];
}

function workerPath(): string | undefined {
  // The bundled worker (starts sooner), else the compiled one; tests running the sources use them too.
  for (const p of [packagePath('dist', 'kernel-worker.mjs'), packagePath('dist', 'kernels', 'worker.js')]) if (existsSync(p)) return p;
  return undefined;
}

/** Workers started ahead of the pass that will use them, unreferenced so they never hold the process. */
const spares: Worker[] = [];

/**
 * Starts the kernel workers of `threads` threads now (the calling thread is one of them), so that
 * their start-up overlaps the reading of the model; the next KernelPool takes them (the start-up's
 * cost: bench/RESULTS.md, §"Figures moved from source comments").
 */
export function prestartKernelWorkers(threads: number): void {
  const path = threads > 1 ? workerPath() : undefined;
  if (!path) return;
  while (spares.length < threads - 1) {
    const w = new Worker(path);
    w.unref();
    spares.push(w);
  }
}

/**
 * Jobs sent to a worker alone (values in memory, which go as a copy) that it holds at once: the one
 * it runs and the next, so that it starts the next as soon as it posts a result instead of waiting
 * for the main thread to receive it and send more.
 */
const QUEUE_DEPTH = 2;

interface Entry {
  job: KernelJob;
  resolve: (r: KernelResult) => void;
  reject: (e: unknown) => void;
  progress?: JobProgress;
  /** For a job offered to every thread: set to 1 by the thread that takes it. */
  claim?: Int32Array;
  id?: number;
}

/**
 * Runs kernel jobs on `threads` threads: the calling thread and threads − 1 workers.
 *
 * A job whose values are still in the file is offered to every thread: the workers get it at once
 * (largest first) and the calling thread looks at it smallest first, and the first to set its claim
 * (an atomic flag in shared memory) runs it. No thread waits for another to hand it work: with jobs
 * handed out by this thread, the worker sat idle whenever this thread was busy with a job of its
 * own (bench/RESULTS.md, §"What changed, each measured against the build before it", 04ac1ae). Jobs
 * with values in memory go to one worker, as a copy, a few at a time, or run here.
 *
 * With two workers, starting them cost CPU time while the model was read, and the calling thread sat
 * idle through the kernels: one worker and this thread did the same sooner (same section, c57978a).
 */
export class KernelPool {
  private readonly workers: Worker[] = [];
  private localScheduled = false;
  /** Jobs sent to each worker alone and not yet answered. */
  private readonly inFlight = new Map<Worker, number>();
  /** Jobs for one worker or this thread, not sent yet. */
  private readonly waiting: Entry[] = [];
  /** Jobs to offer to every thread at the next flush. */
  private toOffer: Entry[] = [];
  /** Offered jobs this thread may still claim. */
  private offered: Entry[] = [];
  private readonly pending = new Map<
    number,
    { resolve: (r: KernelResult) => void; reject: (e: unknown) => void; progress?: JobProgress }
  >();
  private nextId = 0;

  constructor(readonly threads: number) {
    const path = threads > 1 ? workerPath() : undefined;
    if (!path) return;
    for (let i = 0; i < threads - 1; i++) {
      const w = spares.pop() ?? new Worker(path);
      w.ref();
      w.on('message', (m: { id: number; result?: KernelResult; error?: JobError; alone: boolean; fraction?: number }) => {
        // A running job's progress: the job goes on.
        if (m.fraction !== undefined) {
          this.pending.get(m.id)?.progress?.(m.fraction);
          return;
        }
        if (m.alone) {
          this.inFlight.set(w, this.inFlight.get(w)! - 1);
          // The next job first: the worker should not wait while this result is applied.
          this.dispatch();
        }
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(rebuilt(m.error));
        else p?.resolve(m.result!);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
      this.inFlight.set(w, 0);
    }
  }

  /** The worker with the fewest jobs of its own in flight, if it has room for one more. */
  private leastBusy(): Worker | undefined {
    let pick: Worker | undefined;
    for (const w of this.workers)
      if (this.inFlight.get(w)! < QUEUE_DEPTH && (!pick || this.inFlight.get(w)! < this.inFlight.get(pick)!)) pick = w;
    return pick;
  }

  private dispatch(): void {
    for (let w = this.leastBusy(); w && this.waiting.length > 0; w = this.leastBusy()) {
      this.inFlight.set(w, this.inFlight.get(w)! + 1);
      // Largest job first: a big tensor started last would run alone while the other workers idle.
      let pick = 0;
      for (let i = 1; i < this.waiting.length; i++) if (sizeOf(this.waiting[i]!.job) > sizeOf(this.waiting[pick]!.job)) pick = i;
      const { job, resolve, reject, progress } = this.waiting.splice(pick, 1)[0]!;
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject, progress });
      // Only jobs with their input in memory wait here: they go with a copy the worker owns, of just
      // that input (cloning the view would clone the whole buffer under it; and a Buffer's slice is
      // a view, so bytes are copied with the Uint8Array constructor).
      const input = inputOf(job) as Float32Array | Uint8Array;
      const copy = input instanceof Float32Array ? input.slice() : new Uint8Array(input);
      w.postMessage({ id, job: withInput(job, copy), progress: progress !== undefined }, [copy.buffer as ArrayBuffer]);
    }
  }

  /** Offers the jobs gathered since the last flush to every thread, largest first. */
  private flush(): void {
    const batch = this.toOffer.sort((a, b) => sizeOf(b.job) - sizeOf(a.job));
    this.toOffer = [];
    for (const entry of batch) {
      entry.id = this.nextId++;
      entry.claim = new Int32Array(new SharedArrayBuffer(4));
      this.pending.set(entry.id, entry);
      for (const w of this.workers)
        w.postMessage({ id: entry.id, job: entry.job, claim: entry.claim, progress: entry.progress !== undefined });
      this.offered.push(entry);
    }
    this.scheduleLocal();
  }

  /** Runs a job on some thread; `progress` hears the fraction done as it runs (on this thread, from a worker's messages). */
  run<J extends KernelJob>(job: J, progress?: JobProgress): Promise<ResultOf<J>>;
  run(job: KernelJob, progress?: JobProgress): Promise<KernelResult> {
    if (this.workers.length === 0) {
      try {
        return Promise.resolve(execute(job, progress));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      if (!inMemory(inputOf(job))) {
        // Gathered until the caller's loop yields, so that they can be offered largest first.
        if (this.toOffer.length === 0) queueMicrotask(() => this.flush());
        this.toOffer.push({ job, resolve, reject, progress });
      } else {
        this.waiting.push({ job, resolve, reject, progress });
        this.dispatch();
        this.scheduleLocal();
      }
    });
  }

  /** Runs a job on this thread once the events already due (the workers' results) are handled. */
  private scheduleLocal(): void {
    if (this.localScheduled) return;
    this.localScheduled = true;
    setImmediate(() => {
      this.localScheduled = false;
      this.runLocal();
    });
  }

  /**
   * Runs the smallest job this thread can take: this thread also applies the results in order and
   * hands the workers their jobs with values in memory, which a long job here would hold up.
   */
  private runLocal(): void {
    // Offered jobs a worker has claimed are dropped as they are found.
    this.offered = this.offered.filter((e) => Atomics.load(e.claim!, 0) === 0);
    let best: Entry | undefined,
      bestSize = Infinity,
      fromWaiting = -1;
    for (const e of this.offered)
      if (sizeOf(e.job) < bestSize) {
        best = e;
        bestSize = sizeOf(e.job);
      }
    for (let i = 0; i < this.waiting.length; i++) {
      if (sizeOf(this.waiting[i]!.job) < bestSize) {
        best = this.waiting[i];
        bestSize = sizeOf(best!.job);
        fromWaiting = i;
      }
    }
    if (!best) return;
    if (fromWaiting >= 0) this.waiting.splice(fromWaiting, 1);
    else {
      this.offered.splice(this.offered.indexOf(best), 1);
      // Lost to a worker between the look and the claim: try the next.
      if (Atomics.compareExchange(best.claim!, 0, 0, 1) !== 0) {
        this.runLocal();
        return;
      }
      this.pending.delete(best.id!);
    }
    try {
      best.resolve(execute(best.job, best.progress));
    } catch (e) {
      best.reject(e);
    }
    if (this.waiting.length > 0 || this.offered.length > 0) this.scheduleLocal();
  }

  /**
   * Stops the workers without waiting for their threads to end (time the pass need not spend:
   * bench/RESULTS.md, §"After 7c6fa60: kernel workers keep their next job"): unreferenced, they
   * cannot keep the process alive meanwhile.
   */
  async close(): Promise<void> {
    for (const w of this.workers) {
      w.unref();
      w.terminate().catch(() => {});
    }
  }
}

/**
 * How many tensors may be started ahead of the one being applied: on worker threads, enough that a
 * large tensor (an embedding table) on one worker does not leave the others idle (queued jobs hold
 * no values: those still in the file are read by the worker, others copied when dispatched). On
 * one thread, where jobs run as they are started, one: computing ahead gains nothing and would
 * hold results that an external data output writes, and forgets, one by one.
 */
export function windowFor(threads: number): number {
  return threads > 1 ? 64 * threads : 1;
}

/**
 * inOrder's `aheadBytes` for jobs whose results are as large as their tensors (pruned weights): twice
 * the largest tensor per thread, what compress's thread count for external-data models assumes each
 * thread holds (pipeline/compress.ts externalDataThreads). Unbounded, two threads' magnitude pruning of
 * the 2.64 GB llama-style model held 1.76 GB of results waiting their turn (bench/RESULTS.md).
 */
export function aheadForSameSize(threads: number, sizes: number[]): number {
  return 2 * threads * Math.max(0, ...sizes);
}

/** What inOrder reports as it goes: a bar of bytes done (on a terminal), labelled. */
export interface Reporting<T> {
  progress: Progress;
  label: string;
  bytesOf(item: T): number;
}

/**
 * Starts `start(item, progress)` for up to `window` items ahead and yields the results in item
 * order: the caller applies them one by one, deterministically, while later ones are still being
 * computed. The bar counts an item's bytes as its job reports the fraction done (`progress`, which
 * the caller hands to KernelPool.run), and the rest when its job ends, in whatever order they end.
 * With `aheadBytes`, items started and not yet yielded also stay within that many of `report`'s
 * bytes (the next item always starts): for results as large as their items (pruned weights).
 */
export async function* inOrder<T, R>(
  items: T[],
  window: number,
  start: (item: T, progress: JobProgress) => Promise<R>,
  report?: Reporting<T>,
  aheadBytes = Infinity,
): AsyncGenerator<[T, R]> {
  // Sizes first: applying a result may change an item (a weight's tensor is replaced).
  const sizes = report ? items.map((item) => report.bytesOf(item)) : [];
  report?.progress.start(
    sizes.reduce((a, b) => a + b, 0),
    report.label,
    'bytes',
  );
  /** Bytes of each item counted so far. */
  const counted = new Float64Array(items.length);
  const count = (i: number, fraction: number) => {
    if (!report) return;
    const bytes = Math.floor(sizes[i]! * Math.min(1, fraction));
    if (bytes > counted[i]!) {
      report.progress.tick(bytes - counted[i]!);
      counted[i] = bytes;
    }
  };
  const started = new Map<number, Promise<R>>();
  let next = 0;
  /** Bytes of the items started and not yet yielded. */
  let ahead = 0;
  const fill = (upTo: number) => {
    for (; next < items.length && next < upTo; next++) {
      if (started.size > 0 && ahead + (sizes[next] ?? 0) > aheadBytes) break;
      ahead += sizes[next] ?? 0;
      const i = next;
      started.set(
        i,
        start(items[i]!, (f) => count(i, f)).then((r) => {
          count(i, 1);
          return r;
        }),
      );
    }
  };
  try {
    for (let i = 0; i < items.length; i++) {
      fill(i + window);
      const result = await started.get(i)!;
      // Forgotten once yielded: the caller may have written it out (and memory holds only what is in flight).
      started.delete(i);
      ahead -= sizes[i] ?? 0;
      yield [items[i]!, result];
    }
  } finally {
    report?.progress.stop();
  }
}
