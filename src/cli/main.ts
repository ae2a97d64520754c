// The command line: parses arguments, wires commands, and turns errors into one line and an exit code.
import { Command, CommanderError } from 'commander';
import { exitCodeOf, InputError, OutputError, UsageError, GateError } from '../errors.js';
import { abortAllTempFiles } from '../io/atomic.js';
import { registerInspect } from './inspect.js';
import { registerCompress } from './compress.js';
import { registerConformance } from './conformance.js';
import { registerEval } from './eval.js';
import { registerMerge, registerSweep } from './sweep.js';
import { registerAuto } from './auto.js';

import { VERSION } from '../version.js';

function fail(error: unknown, verbose: boolean): never {
  abortAllTempFiles();
  const known = error instanceof InputError || error instanceof UsageError || error instanceof GateError || error instanceof OutputError;
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`onnxpress: ${known ? message : `internal error: ${message}`}\n`);
  if (verbose && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
  process.exit(exitCodeOf(error));
}

export async function main(argv: string[]): Promise<void> {
  const verbose = argv.includes('--verbose');
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      const removed = abortAllTempFiles();
      process.stderr.write(`onnxpress: interrupted by ${signal}${removed ? '; the unfinished output was removed' : ''}\n`);
      process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 129);
    });
  }
  // Past a file-size limit, let the write fail with EFBIG (and clean up) instead of dying on the signal.
  process.on('SIGXFSZ', () => {});
  const program = new Command('onnxpress')
    .description('Make ONNX models smaller and report, measured, what it cost')
    .version(VERSION)
    .option('--verbose', 'show stack traces on errors')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError('(run with --help for usage)');
  registerInspect(program);
  registerCompress(program);
  registerEval(program);
  registerSweep(program);
  registerMerge(program);
  registerAuto(program);
  registerConformance(program);
  program.commands.forEach((c) => c.exitOverride());
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
      abortAllTempFiles();
      process.exit(2);
    }
    fail(e, verbose);
  }
}
