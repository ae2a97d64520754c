// A helper thread of ParallelCopy: copies pieces from the shared queue until it is empty. Started
// with its queue, or ahead of need (prestartCopyHelpers), then given the queue as a message.
import { parentPort, workerData } from 'node:worker_threads';
import { helpQueue, type CopyQueue } from './copy.js';

if (workerData) helpQueue(workerData as CopyQueue);
else
  parentPort!.once('message', (queue: CopyQueue) => {
    helpQueue(queue);
    parentPort!.close();
  });
