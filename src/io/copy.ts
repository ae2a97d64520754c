// Copying byte ranges from file to file on more than one thread. Unchanged tensors are most of an
// unchanged round trip's bytes, and a single thread moving them through user space is the slowest
// part of it: on a 2-vCPU VM one thread copies BERT-base as fast as `cp` does, and two copy it
// faster (bench/RESULTS.md, §"Figures moved from source comments"). Node offers no call that copies
// a range inside the kernel (fs.copyFile copies whole files, and on ext4 its truncate-then-write
// makes close wait for block allocation: bench/RESULTS.md, §"Latest: issue #8's harness at
// 7c6fa60"), so this is read and write in pieces, shared out through a queue in shared memory.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { InputError, OutputError } from '../errors.js';
import { packagePath } from '../paths.js';

/** `length` bytes of `from` at `fromOffset`, to go to `to` (an existing file) at `toOffset`. */
export interface RangeCopy {
  from: string;
  fromOffset: number;
  to: string;
  toOffset: number;
  length: number;
}

/** The queue's shared state, as Int32 slots. */
const NEXT = 0; // index of the next piece to take
const ACTIVE = 1; // helpers between their start and their end
const FAILED = 2; // 0, or which side failed: 1 reading, 2 writing; 3 when cancelled
const MESSAGE_LENGTH = 3;
const SLOTS = 4;
const MESSAGE_BYTES = 1024;

const PIECE = 8 << 20;
const BUFFER = 1 << 20;

/** The shared memory a helper is given. */
export interface CopyQueue {
  pieces: RangeCopy[];
  state: SharedArrayBuffer;
}

/** Splits ranges into pieces of at most 8 MiB, so that threads finish at nearly the same time. */
function piecesOf(ranges: RangeCopy[]): RangeCopy[] {
  const pieces: RangeCopy[] = [];
  for (const r of ranges) {
    for (let at = 0; at < r.length; at += PIECE) {
      pieces.push({ ...r, fromOffset: r.fromOffset + at, toOffset: r.toOffset + at, length: Math.min(PIECE, r.length - at) });
    }
  }
  return pieces;
}

/** Takes pieces from the queue and copies them until none is left or another thread failed. */
export function drainQueue({ pieces, state }: CopyQueue): void {
  const slots = new Int32Array(state, 0, SLOTS);
  const fds = new Map<string, number>();
  const fd = (path: string, flags: string) => {
    let n = fds.get(path);
    if (n === undefined) fds.set(path, (n = openSync(path, flags)));
    return n;
  };
  const buffer = Buffer.allocUnsafeSlow(BUFFER);
  let side = 1;
  try {
    for (let i = Atomics.add(slots, NEXT, 1); i < pieces.length && Atomics.load(slots, FAILED) === 0; i = Atomics.add(slots, NEXT, 1)) {
      const p = pieces[i]!;
      side = 1;
      const from = fd(p.from, 'r');
      side = 2;
      const to = fd(p.to, 'r+');
      for (let done = 0; done < p.length; ) {
        side = 1;
        const n = readSync(from, buffer, 0, Math.min(BUFFER, p.length - done), p.fromOffset + done);
        if (n === 0) throw new Error(`${p.from}: ended before byte ${p.fromOffset + p.length}`);
        side = 2;
        for (let w = 0; w < n; ) w += writeSync(to, buffer, w, n - w, p.toOffset + done + w);
        done += n;
      }
    }
  } catch (e) {
    if (Atomics.compareExchange(slots, FAILED, 0, side) === 0) {
      const text = Buffer.from((e as NodeJS.ErrnoException).code ?? (e as Error).message ?? String(e)).subarray(0, MESSAGE_BYTES);
      new Uint8Array(state, SLOTS * 4, MESSAGE_BYTES).set(text);
      Atomics.store(slots, MESSAGE_LENGTH, text.length);
    }
  } finally {
    for (const n of fds.values()) closeSync(n);
  }
}

/** Called by a helper thread around its share of the work. */
export function helpQueue(queue: CopyQueue): void {
  const slots = new Int32Array(queue.state, 0, SLOTS);
  Atomics.add(slots, ACTIVE, 1);
  try {
    drainQueue(queue);
  } finally {
    Atomics.sub(slots, ACTIVE, 1);
    Atomics.notify(slots, ACTIVE);
  }
}

/** Helpers started ahead of need, waiting for their queue. */
const waiting: Worker[] = [];

function helperScript(): string {
  return packagePath('dist', 'io', 'copy-worker.js');
}

function quiet(w: Worker): Worker {
  // Errors are reported through the shared state; a helper that fails to start leaves its share to the others.
  w.on('error', () => {});
  w.unref();
  return w;
}

/**
 * Starts `n` helper threads now, so that their start-up overlaps reading the model rather than
 * delaying the copy (its cost: bench/RESULTS.md, §"Figures moved from source comments").
 */
export function prestartCopyHelpers(n: number): void {
  while (waiting.length < n) waiting.push(quiet(new Worker(helperScript())));
}

/**
 * Copies ranges on `helpers` worker threads and the calling thread. Helpers start at once and
 * begin copying; `finish` makes the caller copy what is left and wait for them (synchronously, so
 * that a writer can stay synchronous). A helper that has not started by then finds nothing to do.
 */
export class ParallelCopy {
  private readonly queue: CopyQueue;
  private readonly workers: Worker[] = [];

  constructor(ranges: RangeCopy[], helpers: number) {
    this.queue = { pieces: piecesOf(ranges), state: new SharedArrayBuffer(SLOTS * 4 + MESSAGE_BYTES) };
    for (let i = 0; i < helpers && i < this.queue.pieces.length; i++) {
      const started = waiting.pop();
      if (started) started.postMessage(this.queue);
      this.workers.push(started ?? quiet(new Worker(helperScript(), { workerData: this.queue })));
    }
  }

  finish(): void {
    drainQueue(this.queue);
    this.waitForHelpers();
    const slots = new Int32Array(this.queue.state, 0, SLOTS);
    const failed = Atomics.load(slots, FAILED);
    if (failed !== 0) {
      const message = Buffer.from(new Uint8Array(this.queue.state, SLOTS * 4, Atomics.load(slots, MESSAGE_LENGTH))).toString();
      throw failed === 1 ? new InputError(`copying tensor bytes: ${message}`) : new OutputError(`writing tensor bytes: ${message}`);
    }
  }

  /** Stops the helpers after the pieces they are copying, and waits for them; errors are dropped. */
  cancel(): void {
    const slots = new Int32Array(this.queue.state, 0, SLOTS);
    Atomics.compareExchange(slots, FAILED, 0, 3);
    this.waitForHelpers();
  }

  private waitForHelpers(): void {
    const slots = new Int32Array(this.queue.state, 0, SLOTS);
    for (let active = Atomics.load(slots, ACTIVE); active > 0; active = Atomics.load(slots, ACTIVE)) Atomics.wait(slots, ACTIVE, active);
  }
}
