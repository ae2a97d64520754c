// A kernel worker: runs one job (quantizing, pruning or clustering a tensor) and sends the result back.
import { parentPort } from 'node:worker_threads';
import { execute, type KernelJob } from './jobs.js';
import { buffersOf, jobError, throttled } from './pool.js';

parentPort!.on('message', ({ id, job, claim, progress }: { id: number; job: KernelJob; claim?: Int32Array; progress?: boolean }) => {
  // A job offered to every thread runs on the one that claims it first.
  if (claim && Atomics.compareExchange(claim, 0, 0, 1) !== 0) return;
  let result: ReturnType<typeof execute>;
  try {
    // Progress goes back as it is made: the main thread's bar moves while this job runs.
    result = execute(job, progress ? throttled((fraction) => parentPort!.postMessage({ id, fraction })) : undefined);
  } catch (e) {
    // Sent back as data, so that the pool rejects this job with the error's own class (a file
    // that changed under the run is an InputError, not a crash) and the worker goes on.
    parentPort!.postMessage({ id, error: jobError(e), alone: !claim });
    return;
  }
  parentPort!.postMessage({ id, result, alone: !claim }, buffersOf(result));
});
