// The messages between onnxpress (client.ts) and its ONNX Runtime child process (child.ts). They go
// with Node's 'advanced' serialization (structured clone), so typed arrays arrive as typed arrays.
import type { NamedArray } from '../io/testdata.js';

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
  | { id: number; op: 'release'; session: number };

export interface Reply {
  id: number;
  result?: unknown;
  /** ONNX Runtime's message, when the request failed. */
  error?: string;
  /** One timed round done (op 'time'). */
  tick?: true;
}
