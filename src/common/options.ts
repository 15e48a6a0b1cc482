import type { Argv, Options } from 'yargs';
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
}

function fromEnv(spec: OptionSpec): string | number | boolean | undefined {
  const raw = process.env[spec.env];
  if (raw === undefined || raw === '') return undefined;
  if (spec.type === 'boolean') return !/^(0|false|no|off)$/i.test(raw);
  if (spec.type === 'number') return Number(raw);
  return raw;
}

export function addOptions<T>(y: Argv<T>, specs: Record<string, OptionSpec>): Argv<T> {
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
