import type { Logger } from './logger.js';

export interface StopSignals {
  /** Resolves once SIGINT or SIGTERM came (at once if one came already) and close() is done. */
  whenStopped(close: () => Promise<void>): Promise<void>;
}

/**
 * Catches SIGINT and SIGTERM for a server process from the moment it is called, before the
 * node starts: a signal during start-up is held until the node is up, which is then closed
 * at once (stores closed, endpoint files removed). Caught only after start-up, an early
 * signal took the default action and killed the process with its store open. A second
 * signal forces an exit.
 */
export function catchStopSignals(log: Logger): StopSignals {
  let signalled = false;
  let wake: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn({ signal }, 'second signal; exiting without a clean shutdown');
      process.exit(130);
    }
    signalled = true;
    log.info({ signal }, 'shutting down');
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    async whenStopped(close) {
      if (!signalled) await new Promise<void>((resolve) => (wake = resolve));
      await close();
    },
  };
}
