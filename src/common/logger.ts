import { pino, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { aroundStatusLine } from './status-line.js';

export type { Logger };
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** --log-format: auto is pretty on a terminal and json otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** https://no-color.org: a NO_COLOR that is set and not empty turns colours off. */
function colorWanted(): boolean {
  return (process.env.NO_COLOR ?? '') === '';
}

/**
 * Structured logs on stdout: one JSON object per line (what log shippers and our own tests
 * read), or one readable line per entry with its fields appended as JSON: a multi-line
 * entry would be torn apart by tools that read lines, like grep.
 */
export function createLogger(name: string, level: string, format: LogFormat = 'auto'): Logger {
  const options = { name, level, base: { pid: process.pid } };
  const out = pino.destination({ dest: 1, sync: true });
  if (format === 'pretty' || (format === 'auto' && process.stdout.isTTY)) {
    // pino-pretty's formatter rather than its stream: the stream would learn pino's errorKey
    // and print an `err` field (stack and all) on lines of its own below the entry.
    const prettify = prettyFactory({ colorize: colorWanted(), singleLine: true, errorLikeObjectKeys: [], ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' });
    // The terminal may show a progress bar (on stderr): each line is written around it.
    return pino(options, aroundStatusLine({ write: (line: string) => out.write(prettify(line)) }));
  }
  return pino(options, out);
}
