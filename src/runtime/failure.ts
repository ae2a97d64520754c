// What onnxpress says when ONNX Runtime fails on a model: one line naming the model, with the
// useful part of ONNX Runtime's message (which starts with the C++ source line and signature).
import { InputError } from '../errors.js';
import type { NamedArray } from '../io/testdata.js';
import { dtypeName } from '../ir/dtype.js';

export type FailureKind = 'load' | 'run' | 'crash' | 'killed' | 'timeout';

/** A model ONNX Runtime could not load or run, crashed on, or ran past the time budget on. */
export class RuntimeFailure extends InputError {
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly detail: string,
  ) {
    super(message);
  }
}

/** At most this much of ONNX Runtime's message is repeated. */
const MAX_DETAIL = 300;

/** A C++ source location in ONNX Runtime's messages ("/onnxruntime_src/onnxruntime/core/graph/model.cc:191 "). */
const LOCATION = /(?:\/onnxruntime_src\/)?[\w/.+-]+\.(?:cc|cpp|h):\d+ /;

/**
 * The part of ONNX Runtime's message a user can act on: its first line, without "Load model from
 * PATH failed:", source locations with the function after them, "CONDITION was false." and the
 * status codes.
 */
export function ortMessage(message: string): string {
  let rest = (message.split('\n').find((l) => l.trim() !== '') ?? '')
    .replace(/^Load model from .*? failed:/, '')
    .replace(/\[ONNXRuntimeError\] : \d+ : \w+ : /g, '');
  let text = '';
  for (let m = LOCATION.exec(rest); m; m = LOCATION.exec(rest)) {
    text += rest.slice(0, m.index);
    rest = rest.slice(m.index + m[0].length);
    // ORT_ENFORCE gives the full signature, a Status the bare function name.
    rest = rest.slice(signatureLength(rest) || (/^[\w:~]+ /.exec(rest)?.[0].length ?? 0));
    rest = rest.replace(/^.*? was false\. /, '');
  }
  text = (text + rest).trim();
  return text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL - 3)}...` : text || 'no message';
}

/**
 * The length of the C++ signature that starts `text` ("void* ns::F(int, char) "), and the space after
 * it, or 0 when it does not start with one.
 */
function signatureLength(text: string): number {
  let depth = 0,
    words = 0,
    parens = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(' || c === '<') {
      depth++;
      parens ||= c === '(';
    } else if ((c === ')' || c === '>') && depth > 0) depth--;
    else if (c === ' ' && depth === 0) {
      if (parens && /[)>]/.test(text[i - 1]!)) return i + 1;
      // A return type and qualifiers come first; more words than that are the message.
      if (++words > 2) return 0;
    }
  }
  return 0;
}

/** "x: float32 [1, 3], y: int64 [2]", for messages: the first 8 (a one-line message has room for a few). */
export function describeArrays(arrays: NamedArray[]): string {
  if (arrays.length === 0) return 'no inputs';
  const shown = arrays
    .slice(0, 8)
    .map((a) => `${a.name}: ${dtypeName(a.dtype)} [${a.dims.join(', ')}]`)
    .join(', ');
  return arrays.length > 8 ? `${shown} and ${arrays.length - 8} more` : shown;
}

export function loadFailure(label: string, message: string): RuntimeFailure {
  const detail = ortMessage(message);
  return new RuntimeFailure(`${label}: ONNX Runtime cannot load it: ${detail}`, 'load', detail);
}

/** What a run failure suggests unless its caller knows better (evaluate.ts knows where the inputs came from). */
export const RUN_HINT =
  'give inputs that fit the model with --data, other symbolic dimensions with --dim, or whole input shapes with --shape INPUT=D0,D1,...';

export function runFailure(label: string, message: string, inputs: NamedArray[], hint = RUN_HINT): RuntimeFailure {
  const detail = ortMessage(message);
  return new RuntimeFailure(`${label}: ONNX Runtime failed running it on ${describeArrays(inputs)}: ${detail} (${hint})`, 'run', detail);
}

/** `stderr` is what the child printed last: a C++ abort names the exception there. */
export function crashFailure(label: string, phase: 'loading' | 'running', how: string, stderr: string): RuntimeFailure {
  const exception = /instance of '([^']+)'/.exec(stderr)?.[1];
  // Killed outright: what the out-of-memory killer does (a time budget's kill is a timeoutFailure).
  if (how === 'SIGKILL') {
    const killed = `ONNX Runtime was killed (SIGKILL, as the out-of-memory killer kills: it may need more memory than this process may use) while ${phase} ${label}`;
    return new RuntimeFailure(killed, 'killed', killed);
  }
  const detail = `ONNX Runtime crashed (${how}${exception ? `, ${exception}` : ''}) while ${phase} ${label}`;
  return new RuntimeFailure(detail, 'crash', detail);
}

export function timeoutFailure(label: string, phase: 'loading' | 'running', seconds: number): RuntimeFailure {
  const detail = `${label}: evaluation ran past its time budget of ${seconds} s while ${phase} it in ONNX Runtime (raise it with --eval-timeout SECONDS)`;
  return new RuntimeFailure(detail, 'timeout', detail);
}
