import type { Argv, Options } from 'yargs';
import { DEFAULT_DATA_ROOT, DEFAULT_MASTER_ADDRESS, parseAddress } from './config.js';
import { LOG_LEVELS } from './logger.js';

/**
 * Every CLI option has a documented default and an environment variable. The variable,
 * when set, replaces the default; a flag on the command line wins over both. --help shows
 * the built-in default and the variable's name.
 */
export interface OptionSpec extends Pick<Options, 'alias' | 'choices' | 'array'> {
  type: 'string' | 'number' | 'boolean';
  default?: string | number | boolean;
  env: string;
  describe: string;
  /**
   * Checks and converts the value (from the flag, the variable or the default) while the
   * command line is parsed, so a bad value ends the CLI with one line and exit 2 before it
   * starts anything, and the tool reads the parsed value. Throws a ReplicatorError naming
   * the flag (`--name`). Not called when the option has no value.
   */
  parse?: (raw: unknown, flag: string) => unknown;
}

function fromEnv(spec: OptionSpec): string | number | boolean | undefined {
  const raw = process.env[spec.env];
  if (raw === undefined || raw === '') return undefined;
  if (spec.type === 'boolean') return !/^(0|false|no|off)$/i.test(raw);
  // Not a number: kept as typed, so the option's parse names the bad value instead of NaN.
  if (spec.type === 'number') return Number.isNaN(Number(raw)) ? raw : Number(raw);
  return raw;
}

/** yargs also keeps a camelCase copy of every hyphenated option (timeoutMs for timeout-ms). */
function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function addOptions<T>(y: Argv<T>, specs: Record<string, OptionSpec>): Argv<T> {
  const parsed = Object.entries(specs).filter(([, spec]) => spec.parse);
  if (parsed.length > 0) {
    y = y.check((parsedArgv) => {
      const argv = parsedArgv as Record<string, unknown>;
      for (const [name, spec] of parsed) {
        if (argv[name] === undefined) continue;
        const value = spec.parse!(argv[name], `--${name}`);
        for (const key of new Set([name, camelCase(name)])) argv[key] = value;
      }
      return true;
    }) as Argv<T>;
  }
  for (const [name, spec] of Object.entries(specs)) {
    const envValue = fromEnv(spec);
    y = y.option(name, {
      type: spec.type,
      alias: spec.alias,
      choices: spec.choices,
      array: spec.array,
      describe: `${spec.describe}  [env: ${spec.env}]`,
      default: envValue ?? spec.default,
      defaultDescription: spec.default === undefined ? undefined : JSON.stringify(spec.default),
      // A repeated flag: the last one wins (yargs would make an array of both).
      coerce: spec.array ? undefined : (v: unknown) => (Array.isArray(v) ? v[v.length - 1] : v),
    }) as Argv<T>;
  }
  return y;
}

export const LOG_LEVEL_OPTION: Record<string, OptionSpec> = {
  'log-level': { type: 'string', default: 'info', env: 'LR_LOG_LEVEL', choices: [...LOG_LEVELS], describe: 'Log level' },
};

/** The master's address, as the clients and the followers take it. */
export const MASTER_OPTION: Record<string, OptionSpec> = {
  master: { type: 'string', default: DEFAULT_MASTER_ADDRESS, env: 'LR_MASTER_ADDRESS', describe: 'Address of the master', parse: (v) => parseAddress(v) },
};

export const DATA_ROOT_OPTION: Record<string, OptionSpec> = {
  'data-root': { type: 'string', default: DEFAULT_DATA_ROOT, env: 'LR_DATA_ROOT', describe: "Directory holding every node's data directory" },
};
