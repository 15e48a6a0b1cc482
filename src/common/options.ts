import type { Argv, Options } from 'yargs';
import { DEFAULT_DATA_ROOT, DEFAULT_MASTER_ADDRESS, parseAddress, parseIntInRange, parsePath } from './config.js';
import { configValue, readConfigFile, type ConfigValues } from './config-file.js';
import { ErrorCode, ReplicatorError } from './errors.js';
import { LOG_FORMATS, LOG_LEVELS } from './logger.js';

/**
 * Every CLI option has a documented default and an environment variable, and may be set
 * in the `--config` file. Precedence: a flag on the command line, then the variable, then
 * the config file, then the default. --help shows the built-in default and the variable's name.
 */
export interface OptionSpec extends Pick<Options, 'alias' | 'choices' | 'array'> {
  type: 'string' | 'number' | 'boolean';
  default?: string | number | boolean;
  env: string;
  describe: string;
  /**
   * Checks and converts the value (from the flag, the variable, the config file or the
   * default) while the command line is parsed, so a bad value ends the CLI with one line
   * and exit 2 before it starts anything, and the tool reads the parsed value. Throws a
   * ReplicatorError naming the flag (`--name`). Not called when the option has no value.
   */
  parse?: (raw: unknown, flag: string) => unknown;
}

/** Where an option's value came from. */
export type OptionSource = 'flag' | 'env' | 'config' | 'default';

/** The option naming the config file; its own value comes from the flag or the variable only. */
export const CONFIG_OPTION: Record<string, OptionSpec> = {
  config: {
    type: 'string',
    env: 'LR_CONFIG',
    describe: 'YAML or JSON file of option values, keyed like the flags (`batch-size: 100`); a flag or an environment variable wins over it',
    parse: parsePath,
  },
};

/** The options of each parser, gathered over its addOptions calls and resolved together at parse time. */
const SPECS = new WeakMap<object, Map<string, OptionSpec>>();
/** Kept on the parsed argv under a symbol: invisible to yargs' strict mode and to the tools' own keys. */
const SOURCES = Symbol('option sources');

function fromEnv(spec: OptionSpec): string | boolean | undefined {
  const raw = process.env[spec.env];
  if (raw === undefined || raw === '') return undefined;
  if (spec.type === 'boolean') return !/^(0|false|no|off)$/i.test(raw);
  return raw;
}

/** yargs also keeps a camelCase copy of every hyphenated option (timeoutMs for timeout-ms). */
function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** yargs checks the choices of a flag; a value from elsewhere is checked here, in the same words. */
function checkChoice(name: string, spec: OptionSpec, value: unknown, from: string): void {
  const choices = spec.choices as readonly unknown[] | undefined;
  if (!choices || choices.includes(value)) return;
  throw new ReplicatorError(
    ErrorCode.INVALID_ARGUMENT,
    `--${name}: ${JSON.stringify(value)} (from ${from}) is not one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`,
  );
}

/**
 * Gives every option its value by precedence (flag > environment variable > config file >
 * default), runs its parse, and records where each value came from (optionSource).
 * A key of the config file that names no option of this command is refused like an
 * unknown flag.
 */
function resolveOptions(argv: Record<string | symbol, unknown>, specs: Map<string, OptionSpec>): void {
  const sources = new Map<string, OptionSource>();
  const configSpec = specs.get('config');
  const configFile = configSpec ? ((argv.config as string | undefined) ?? fromEnv(configSpec)) : undefined;
  let config: ConfigValues = {};
  if (configFile !== undefined && configFile !== true) {
    const file = parsePath(configFile, '--config');
    config = readConfigFile(file);
    for (const key of Object.keys(config)) {
      if (key === 'config' || !specs.has(key)) {
        throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `--config ${file}: ${JSON.stringify(key)} is not an option of this command (see --help)`);
      }
    }
  }
  for (const [name, spec] of specs) {
    let value: unknown = argv[name];
    let source: OptionSource = 'flag';
    if (value === undefined) {
      const env = fromEnv(spec);
      if (env !== undefined) {
        [value, source] = [env, 'env'];
        checkChoice(name, spec, value, spec.env);
      } else if (name in config) {
        [value, source] = [configValue(configFile as string, name, spec.type, config[name]), 'config'];
        checkChoice(name, spec, value, String(configFile));
      } else if (spec.default !== undefined) {
        [value, source] = [spec.default, 'default'];
      }
    }
    if (value === undefined) continue;
    sources.set(name, source);
    if (spec.parse) value = spec.parse(value, `--${name}`);
    const aliases = spec.alias === undefined ? [] : Array.isArray(spec.alias) ? spec.alias : [spec.alias];
    for (const key of new Set([name, camelCase(name), ...aliases])) argv[key] = value;
  }
  argv[SOURCES] = sources;
}

/** Where option `name` got its value: undefined when it has none. */
export function optionSource(argv: object, name: string): OptionSource | undefined {
  return ((argv as Record<symbol, unknown>)[SOURCES] as Map<string, OptionSource> | undefined)?.get(name);
}

/** The options of specs that were given as flags on the command line, as `--name`. */
export function flagsGiven(argv: object, names: string[]): string[] {
  return names.filter((n) => optionSource(argv, n) === 'flag').map((n) => `--${n}`);
}

export function addOptions<T>(y: Argv<T>, specs: Record<string, OptionSpec>): Argv<T> {
  let all = SPECS.get(y);
  if (!all) {
    const mine = new Map<string, OptionSpec>();
    SPECS.set(y, mine);
    all = mine;
    // One resolution for all of this parser's options, after yargs has read the flags.
    y = y.check((argv) => {
      resolveOptions(argv as Record<string | symbol, unknown>, mine);
      return true;
    }) as Argv<T>;
    SPECS.set(y, mine);
  }
  for (const [name, spec] of Object.entries(specs)) {
    all.set(name, spec);
    y = y.option(name, {
      // A number is read as text and converted by its parse, so a bad one is echoed as given ("abc", not NaN).
      type: spec.type === 'number' && spec.parse ? 'string' : spec.type,
      alias: spec.alias,
      choices: spec.choices,
      array: spec.array,
      describe: `${spec.describe}  [env: ${spec.env}]`,
      // No yargs default: resolveOptions applies the environment, the config file and the default, in that order.
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

/** The servers' log options: level and format. */
export const LOG_OPTIONS: Record<string, OptionSpec> = {
  ...LOG_LEVEL_OPTION,
  'log-format': {
    type: 'string',
    default: 'auto',
    env: 'LR_LOG_FORMAT',
    choices: [...LOG_FORMATS],
    describe: 'json: one JSON object per line; pretty: one readable line per entry (coloured unless NO_COLOR is set); auto: pretty on a terminal, else json',
  },
};

/** The master's address, as the clients and the followers take it. */
export const MASTER_OPTION: Record<string, OptionSpec> = {
  master: { type: 'string', default: DEFAULT_MASTER_ADDRESS, env: 'LR_MASTER_ADDRESS', describe: 'Address of the master', parse: (v) => parseAddress(v) },
};

export const DATA_ROOT_OPTION: Record<string, OptionSpec> = {
  'data-root': { type: 'string', default: DEFAULT_DATA_ROOT, env: 'LR_DATA_ROOT', describe: "Directory holding every node's data directory" },
};

/** The size at which a log segment file is closed (--log-segment-bytes: 64 KiB to 4 GiB). */
export function parseSegmentBytes(raw: unknown, flag: string): number {
  return parseIntInRange(raw, flag, 64 * 1024, 4 * 1024 ** 3);
}

/** --log-segment-bytes, shared by the master and followers (each node keeps a log). */
export const LOG_SEGMENT_OPTION: Record<string, OptionSpec> = {
  'log-segment-bytes': {
    type: 'number',
    default: 64 * 1024 * 1024,
    env: 'LR_LOG_SEGMENT_BYTES',
    describe: 'Size at which a log segment file is closed and the next one started (trimming deletes whole segments)',
    parse: parseSegmentBytes,
  },
};
