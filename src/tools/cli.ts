import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isReplicatorError } from '../common/errors.js';
import { ExitCode, exitCodeOf } from './exit-codes.js';

/**
 * A yargs parser with our conventions: strict, one-line usage errors, exit 2. Options are
 * checked while parsing (OptionSpec.parse, checkArgs), so a bad value ends the CLI here,
 * before it starts anything, with the same line as any other error of that code.
 */
export function cli(scriptName: string, usage: string): Argv {
  return yargs(hideBin(process.argv))
    .scriptName(scriptName)
    .usage(usage)
    .strict()
    .parserConfiguration({ 'parse-numbers': false, 'parse-positional-numbers': false })
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      if (isReplicatorError(err)) process.exit(reportError(scriptName, err));
      // One line: yargs words some errors on several ("Invalid values:\n  Argument: ...").
      const text = (msg ?? err?.message ?? 'invalid arguments').replace(/\s*\n\s*/g, ' ').trim();
      process.stderr.write(`${scriptName}: ${text} (see --help)\n`);
      process.exit(ExitCode.USAGE);
    });
}

/**
 * Checks across options, or of positionals, run at parse time after every option's own
 * parse (addOptions). check throws a ReplicatorError for a bad command line, and may
 * replace a value in argv with its parsed form.
 */
export function checkArgs<T>(y: Argv<T>, check: (argv: Record<string, unknown>) => void): Argv<T> {
  return y.check((argv) => {
    check(argv);
    return true;
  });
}

/**
 * Writes an error as one line on stderr and returns the exit code of its error code;
 * never a stack trace (those go to the debug log of the servers, not to users).
 */
function reportError(scriptName: string, err: unknown): number {
  if (isReplicatorError(err)) {
    process.stderr.write(`${scriptName}: ${err.message} [${err.code}]\n`);
    return exitCodeOf(err);
  }
  process.stderr.write(`${scriptName}: internal error: ${(err as Error)?.message ?? String(err)}\n`);
  return ExitCode.INTERNAL;
}

/** Runs a CLI body; any error it throws ends it as reportError says. */
export async function runCli(scriptName: string, main: () => Promise<number | void>): Promise<void> {
  try {
    const code = await main();
    process.exitCode = code ?? ExitCode.OK;
  } catch (err) {
    process.exitCode = reportError(scriptName, err);
  }
}
