import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { isReplicatorError } from '../common/errors.js';
import { ExitCode, exitCodeOf } from './exit-codes.js';

/** A yargs parser with our conventions: strict, one-line usage errors, exit 2. */
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
      // One line: yargs words some errors on several ("Invalid values:\n  Argument: ...").
      const text = (msg ?? err?.message ?? 'invalid arguments').replace(/\s*\n\s*/g, ' ').trim();
      process.stderr.write(`${scriptName}: ${text} (see --help)\n`);
      process.exit(ExitCode.USAGE);
    });
}

/**
 * Runs a CLI body. Any error becomes one line on stderr and the exit code of its error
 * code; never a stack trace (those go to the debug log of the servers, not to users).
 */
export async function runCli(scriptName: string, main: () => Promise<number | void>): Promise<void> {
  try {
    const code = await main();
    process.exitCode = code ?? ExitCode.OK;
  } catch (err) {
    if (isReplicatorError(err)) {
      process.stderr.write(`${scriptName}: ${err.message} [${err.code}]\n`);
      process.exitCode = exitCodeOf(err);
    } else {
      process.stderr.write(`${scriptName}: internal error: ${(err as Error)?.message ?? String(err)}\n`);
      process.exitCode = ExitCode.INTERNAL;
    }
  }
}
