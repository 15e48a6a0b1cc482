import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { aroundStatusLine } from './status-line.js';

export type { Logger };
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Structured logs on stdout: readable lines on a terminal, one JSON object per line
 * otherwise (what log shippers and our own tests read).
 */
export function createLogger(name: string, level: string): Logger {
  const options = { name, level, base: { pid: process.pid } };
  if (process.stdout.isTTY) {
    // The terminal may show a progress bar (on stderr): each line is written around it.
    return pino(options, aroundStatusLine(pretty({ colorize: true, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' })));
  }
  return pino(options, pino.destination({ dest: 1, sync: true }));
}
