import type { Logger } from './logger.js';

/**
 * Keeps a server process running until SIGINT or SIGTERM, then closes it (stores
 * closed, endpoint files removed) and resolves. A second signal forces an exit.
 */
export function untilSignal(log: Logger, close: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal; exiting without a clean shutdown');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      close().then(resolve, reject);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
