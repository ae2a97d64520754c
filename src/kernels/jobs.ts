// The kinds of kernel job a pool runs. Each kind's job, result and code live beside its arithmetic;
// a new kernel adds its kind here and pool.ts stays as it is. One table rather than modules that
// register themselves when imported: a worker thread loads this module alone and must find every
// kind in it.
import type { JobInput, JobKind } from './job.js';
import { FACTOR_JOB } from './cholesky.js';
import { FINGERPRINT_JOB } from './fingerprint.js';
import { GPTQ_JOB } from './gptq.js';
import { HALF_FILL_JOB } from './half-file.js';
import { CLUSTER_JOB } from './kmeans.js';
import { NM_JOB } from './nm-select.js';
import { QUANTIZE_JOB } from './quantize.js';
import { PRUNE_JOB } from './smallest.js';
import { SPARSEGPT_JOB } from './sparsegpt.js';
import { WANDA_JOB } from './wanda.js';
import type { JobProgress } from './progress.js';

const JOBS = {
  quantize: QUANTIZE_JOB,
  cluster: CLUSTER_JOB,
  prune: PRUNE_JOB,
  nm: NM_JOB,
  fingerprint: FINGERPRINT_JOB,
  sparsegpt: SPARSEGPT_JOB,
  wanda: WANDA_JOB,
  'half-fill': HALF_FILL_JOB,
  factor: FACTOR_JOB,
  gptq: GPTQ_JOB,
};

type Kinds = typeof JOBS;
type JobOfKind<K extends keyof Kinds> = Parameters<Kinds[K]['execute']>[0];
type ResultOfKind<K extends keyof Kinds> = ReturnType<Kinds[K]['execute']>;

export type KernelJob = { [K in keyof Kinds]: JobOfKind<K> }[keyof Kinds];
export type KernelResult = { [K in keyof Kinds]: ResultOfKind<K> }[keyof Kinds];

/** What a job gives: by its kind, a quantize job where it names none. */
export type ResultOf<J extends KernelJob> = J extends { kind: infer K extends keyof Kinds } ? ResultOfKind<K> : ResultOfKind<'quantize'>;

/** A job's kind, seen as the pool handles every kind: alike. */
function kindOf(job: KernelJob): JobKind<Record<string, JobInput>, KernelResult> {
  return JOBS[job.kind ?? 'quantize'] as unknown as ReturnType<typeof kindOf>;
}

export function inputOf(job: KernelJob): JobInput {
  return (job as unknown as Record<string, JobInput>)[kindOf(job).input]!;
}

/** The job with another input: a copy that the worker it is sent to owns. */
export function withInput(job: KernelJob, input: JobInput): KernelJob {
  return { ...job, [kindOf(job).input]: input };
}

/** Runs a job on this thread (a worker's, or the caller's when there are none), telling `progress` the fraction done as it goes. */
export function execute(job: KernelJob, progress?: JobProgress): KernelResult {
  return kindOf(job).execute(job as unknown as Record<string, JobInput>, progress);
}
