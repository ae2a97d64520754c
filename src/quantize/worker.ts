// A kernel worker: quantizes the groups of one tensor and sends the result back.
import { parentPort } from 'node:worker_threads';
import { groupsFrom, type KernelJob } from './parallel.js';
import { quantizeGroups } from './kernels.js';

parentPort!.on('message', (job: KernelJob & { id: number }) => {
  const r = quantizeGroups(job.values, groupsFrom(job.groups, job.values.length), job.options);
  const buffers = new Set([r.codes.buffer, r.scales.buffer, r.zeroPoints.buffer, r.packed?.data.buffer, r.packed?.scales.buffer]);
  buffers.delete(undefined);
  parentPort!.postMessage({ id: job.id, result: r }, [...buffers] as ArrayBuffer[]);
});
