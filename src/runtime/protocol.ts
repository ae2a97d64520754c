// The messages between onnxpress (client.ts) and its ONNX Runtime child process (child.ts). They go
// with Node's 'advanced' serialization (structured clone), so typed arrays arrive as typed arrays.
import type { NamedArray } from '../io/testdata.js';
import type { Extremes } from '../kernels/activation-stats.js';

export type Request =
  /** Creates a session; the result is its number. */
  | { id: number; op: 'load'; path: string; threads: number }
  /** Runs a session; the result is every output, in the session's output order. */
  | { id: number; op: 'run'; session: number; inputs: NamedArray[] }
  /**
   * Runs the sessions in turn, `warmup` times untimed, then `runs` times each timed around
   * session.run alone; the result is the milliseconds of each session's runs. A tick follows each round.
   */
  | { id: number; op: 'time'; sessions: number[]; inputs: NamedArray[]; runs: number; warmup: number }
  /** Frees a session. */
  | { id: number; op: 'release'; session: number }
  /**
   * Runs a session and adds the named outputs' statistics to what the child keeps for it (their
   * extremes, or, for those in `histograms`, their counts over [−absMax, absMax]); the outputs
   * themselves stay in the child. The result is the bytes the named outputs took (CollectResult).
   */
  | { id: number; op: 'collect'; session: number; inputs: NamedArray[]; names: string[]; histograms?: Record<string, number> }
  /** The statistics collected for a session since the last such request (Collected), which the child then forgets. */
  | { id: number; op: 'collected'; session: number };

/** What a 'collect' request's run produced. */
export interface CollectResult {
  /** Bytes of the named outputs of this run, so that the caller can size its next batch. */
  bytes: number;
}

/** Statistics collected by 'collect' requests, by output name. */
export interface Collected {
  extremes: Record<string, Extremes>;
  histograms: Record<string, Float64Array>;
}

export interface Reply {
  id: number;
  result?: unknown;
  /** ONNX Runtime's message, when the request failed. */
  error?: string;
  /** One timed round done (op 'time'). */
  tick?: true;
}
