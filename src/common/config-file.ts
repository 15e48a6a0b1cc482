import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, ReplicatorError } from './errors.js';

/**
 * A `--config` file: a YAML (or JSON, which YAML reads too) mapping from option names,
 * spelt as the flags without `--` (`batch-size: 100`), to values. Only reading and the
 * shape are checked here; each value goes through its option's own check like a flag's.
 */
export type ConfigValues = Record<string, unknown>;

function refuse(file: string, why: string): ReplicatorError {
  return new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `--config ${file}: ${why}`);
}

export function readConfigFile(file: string): ConfigValues {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw refuse(file, e.code === 'EISDIR' ? 'is a directory, not a file' : e.code === 'ENOENT' ? 'no such file' : `cannot read it (${e.code ?? e.message})`);
  }
  let doc: unknown;
  try {
    // uniqueKeys: a key given twice is a mistake, not "the last one wins".
    doc = parseYaml(text, { uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    // One line: the parser's message may quote the offending lines under it.
    throw refuse(file, `not valid YAML or JSON: ${String((err as Error).message).split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw refuse(file, 'must be a mapping of option names to values (`listen: 127.0.0.1:50051`)');
  return doc as ConfigValues;
}

/**
 * A value from the file as the option's own parse expects it: the text of a flag for
 * strings and numbers (so a bad one is echoed as given), true or false for a switch.
 */
export function configValue(file: string, name: string, type: 'string' | 'number' | 'boolean', raw: unknown): string | number | boolean {
  if (type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    throw refuse(file, `${name} must be true or false, got ${JSON.stringify(raw)}`);
  }
  if (typeof raw === 'string') return raw;
  if (typeof raw === 'number' && Number.isFinite(raw)) return type === 'number' ? raw : String(raw);
  throw refuse(file, `${name} must be a ${type === 'number' ? 'number' : 'string'}, got ${JSON.stringify(raw)}`);
}
