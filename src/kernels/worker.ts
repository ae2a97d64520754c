// A kernel worker: runs one job (quantizing, pruning or clustering a tensor) and sends the result back.
import { parentPort } from 'node:worker_threads';
import { buffersOf, execute, type KernelJob } from './pool.js';

parentPort!.on('message', ({ id, job, claim }: { id: number; job: KernelJob; claim?: Int32Array }) => {
  // A job offered to every thread runs on the one that claims it first.
  if (claim && Atomics.compareExchange(claim, 0, 0, 1) !== 0) return;
  const result = execute(job);
  parentPort!.postMessage({ id, result, alone: !claim }, buffersOf(result));
});
