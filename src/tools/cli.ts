import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { addOptions, CONFIG_OPTION } from '../common/options.js';
import { VERSION } from '../common/version.js';
import { ExitCode, exitCodeOf } from './exit-codes.js';

/**
 * A yargs parser with our conventions: strict, one-line usage errors, exit 2, --version,
 * --config. Options are checked while parsing (OptionSpec.parse, checkArgs), so a bad
 * value ends the CLI here, before it starts anything, with the same line as any other
 * error of that code. The first line of usage names the required positionals
 * (`$0 <id> <key> [options]`): a usage error says which of them is missing.
 */
export function cli(scriptName: string, usage: string): Argv {
  const y = yargs(hideBin(process.argv))
    .scriptName(scriptName)
    .usage(usage)
    .strict()
    .parserConfiguration({ 'parse-numbers': false, 'parse-positional-numbers': false })
    .help()
    .alias('help', 'h')
    .version('version', 'Show the level-replicator version', VERSION)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      if (isReplicatorError(err)) process.exit(reportError(scriptName, err));
      // One line: yargs words some errors on several ("Invalid values:\n  Argument: ...").
      const text = (missingPositionals(usage, msg) ?? msg ?? err?.message ?? 'invalid arguments').replace(/\s*\n\s*/g, ' ').trim();
      process.stderr.write(`${scriptName}: ${text} (see --help)\n`);
      process.exit(ExitCode.USAGE);
    });
  return addOptions(y, CONFIG_OPTION);
}

/** The required positionals of a usage text's first line, in order: `<id>`, `<node...>`. */
function requiredPositionals(usage: string): string[] {
  return usage.split('\n')[0].match(/<[^>]+>/g) ?? [];
}

/** A usage error naming the missing arguments, e.g. "missing argument <key>". */
export function missingArguments(names: string[]): Error {
  return new Error(`missing argument${names.length > 1 ? 's' : ''} ${names.join(' ')}`);
}

/** yargs' "Not enough non-option arguments: got 1, need at least 2", said with the names of the missing ones. */
function missingPositionals(usage: string, msg: string | undefined): string | undefined {
  const m = /^Not enough non-option arguments: got (\d+), need at least (\d+)/.exec(msg ?? '');
  const names = requiredPositionals(usage);
  if (!m || names.length < Number(m[2])) return undefined;
  return missingArguments(names.slice(Number(m[1]), Number(m[2]))).message;
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

/**
 * Runs a server's start-up: an error that ends it is also logged at fatal, so a log
 * shipper reading the JSON stream sees why the process stopped (stderr still gets the
 * one line and runCli the exit code).
 */
export async function logStartFailure<T>(log: Logger, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = isReplicatorError(err) ? err.code : 'INTERNAL';
    log.fatal({ code, err: (err as Error)?.message ?? String(err) }, 'could not start');
    throw err;
  }
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
