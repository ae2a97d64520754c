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

export function exitCodeOf(error: unknown): number {
  if (error instanceof InputError || error instanceof UsageError || error instanceof GateError || error instanceof OutputError) return error.exitCode;
  return 1;
}

/** A file could not be written (disk full, permissions, an output that would overwrite an input). Exit code 1. */
export class OutputError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'OutputError';
  }
}
