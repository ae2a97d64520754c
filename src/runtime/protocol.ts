// The messages between onnxpress (client.ts) and its ONNX Runtime child process (child.ts). They go
// with Node's 'advanced' serialization (structured clone), so typed arrays arrive as typed arrays.
import type { NamedArray } from '../io/testdata.js';
import type { Extremes } from '../kernels/activation-stats.js';
import type { Fidelity } from '../kernels/fidelity.js';

/** What a 'compare' request found, by value name. */
export type Compared = Record<string, Fidelity>;

export type Request =
  /** Creates a session; the result is its number. */
  | { id: number; op: 'load'; path: string; threads: number; spinning?: boolean; prepack?: boolean }
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
   * extremes, or, for those in `histograms`, their counts over [−absMax, absMax]), and the extremes
   * of values the model reduces itself (`reductions`); the outputs themselves stay in the child.
   */
  | {
      id: number;
      op: 'collect';
      session: number;
      inputs: NamedArray[];
      names: string[];
      histograms?: Record<string, number>;
      reductions?: Reduction[];
    }
  /** The statistics collected for a session since the last such request (Collected), which the child then forgets. */
  | { id: number; op: 'collected'; session: number }
  /**
   * Runs a session and adds the named outputs, element by element, to the sums the child keeps for
   * it (float outputs in float64, int64 ones in int64): calibration's XᵀX over many runs then crosses
   * to onnxpress once ('summed'), not once a run.
   */
  | { id: number; op: 'sum'; session: number; inputs: NamedArray[]; names: string[]; grams?: GramSum[] }
  /**
   * The sums of 'sum' requests of the named outputs (all when `names` is absent), by output name
   * (Summed), which the child then forgets: asked a few at a time, no message holds them all.
   */
  | { id: number; op: 'summed'; session: number; names?: string[] }
  /**
   * Runs both sessions on the inputs, fetching the named values a group at a time (as many as fit
   * `budgetBytes` by the largest value seen so far), and compares each pair where it is: the result
   * is a Fidelity by name, for values both runs wrote as float32 arrays of one length.
   */
  | { id: number; op: 'compare'; reference: number; candidate: number; inputs: NamedArray[]; names: string[]; budgetBytes: number };

/**
 * A value whose extremes the model computes itself: outputs `min` and `max` (ReduceMin, ReduceMax
 * of all its elements) and `size` (its element count, int64), so that the value never leaves ONNX
 * Runtime's own memory.
 */
export interface Reduction {
  name: string;
  min: string;
  max: string;
  size: string;
}

/** What a 'collect' request's run produced. */
export interface CollectResult {
  /** Bytes of the named and reduced values of this run, so that the caller can size its next batch. */
  bytes: number;
}

/**
 * In a 'sum' request: the run's output `value` (float64 rows × k) is passed through `session`, a
 * model of one input and one output (its XᵀX in float64), whose output is added to the sum `into`.
 * One product at a time: the run's outputs are its activations, not every layer's K×K at once.
 */
export interface GramSum {
  value: string;
  session: number;
  into: string;
}

/** Outputs summed over 'sum' requests, by name. */
export type Summed = Record<string, Float64Array | BigInt64Array>;

/** Statistics collected by 'collect' requests, by value name. */
export interface Collected {
  extremes: Record<string, Extremes>;
  histograms: Record<string, Float64Array>;
  /** Reduced values whose minimum or maximum was not finite (NaN, ±∞): their extremes need the values themselves. */
  nonFinite: string[];
}

export interface Reply {
  id: number;
  result?: unknown;
  /** ONNX Runtime's message, when the request failed. */
  error?: string;
  /** One timed round done (op 'time'). */
  tick?: true;
}
