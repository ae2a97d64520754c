// A kernel worker: runs one job (quantizing, pruning or clustering a tensor) and sends the result back.
import { parentPort } from 'node:worker_threads';
import { buffersOf, execute, type KernelJob } from './pool.js';

parentPort!.on('message', ({ id, job }: { id: number; job: KernelJob }) => {
  const result = execute(job);
  parentPort!.postMessage({ id, result }, buffersOf(result));
});
