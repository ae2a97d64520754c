// The command line: parses arguments, wires commands, and turns errors into one line and an exit code.
import { Command, CommanderError } from 'commander';
import { exitCodeOf, knownError } from '../errors.js';
import { abortAllTempFiles } from '../io/atomic.js';
import { removeCreatedFolders } from '../io/output-path.js';
import { printableText } from '../report/printable.js';
import { endProgressLine } from './progress.js';
import { registerInspect } from './inspect.js';
import { registerCompress } from './compress.js';
import { registerConformance } from './conformance.js';
import { registerEval } from './eval.js';
import { registerMerge, registerSweep } from './sweep.js';
import { registerAuto } from './auto.js';
import { registerConvert } from './convert.js';

import { VERSION } from '../version.js';

/** Longest error line printed: enough for two paths and a reason. */
const MAX_ERROR_TEXT = 1000;

function fail(error: unknown, verbose: boolean): never {
  abortAllTempFiles();
  removeCreatedFolders();
  endProgressLine();
  const known = knownError(error) !== undefined;
  const message = error instanceof Error ? error.message : String(error);
  // One line, whatever the message quotes from a file (names, paths, a runtime's own words).
  process.stderr.write(`onnxpress: ${printableText(known ? message : `internal error: ${message}`, MAX_ERROR_TEXT)}\n`);
  if (verbose && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
  process.exit(exitCodeOf(error));
}

export async function main(argv: string[]): Promise<void> {
  const verbose = argv.includes('--verbose');
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      const removed = abortAllTempFiles();
      removeCreatedFolders();
      // A progress bar's line is ended first: the message starts on a line of its own.
      endProgressLine();
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
  registerConvert(program);
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
      abortAllTempFiles();
      removeCreatedFolders();
      process.exit(2);
    }
    fail(e, verbose);
  }
}
