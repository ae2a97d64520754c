// Errors the CLI turns into one line and an exit code (../shared/DESIGN.md, Conventions).

/** Bad input: a file that is missing, malformed, unsafe or unsupported. Exit code 1. */
export class InputError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** Bad usage: unknown options, values out of range, conflicting flags. Exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A CI gate (--max-accuracy-drop, --min-size-reduction, ...) was not met. Exit code 3. */
export class GateError extends Error {
  readonly exitCode = 3;
  constructor(message: string) {
    super(message);
    this.name = 'GateError';
  }
}

/** Not enough of a resource of the machine (memory, address space) for the work: exit code 1. */
export class ResourceError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'ResourceError';
  }
}

type KnownError = InputError | UsageError | GateError | OutputError | ResourceError;

/**
 * The error a user is shown as the reason, with its exit code: `error` itself, or the cause it
 * wraps (a pass that failed on bad input); undefined for a bug.
 */
export function knownError(error: unknown): KnownError | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (
      e instanceof InputError ||
      e instanceof UsageError ||
      e instanceof GateError ||
      e instanceof OutputError ||
      e instanceof ResourceError
    )
      return e;
  }
  return undefined;
}

export function exitCodeOf(error: unknown): number {
  return knownError(error)?.exitCode ?? 1;
}

/** A file could not be written (disk full, permissions, an output that would overwrite an input). Exit code 1. */
export class OutputError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'OutputError';
  }
}
