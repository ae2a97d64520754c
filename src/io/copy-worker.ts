// A helper thread of ParallelCopy: copies pieces from the shared queue until it is empty.
import { workerData } from 'node:worker_threads';
import { helpQueue, type CopyQueue } from './copy.js';

helpQueue(workerData as CopyQueue);
