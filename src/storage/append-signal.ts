import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * Wakes readers parked at the end of a log: every log implementation signals here on
 * each append (and on shutdown), so streams wait for new entries without polling.
 */
export class AppendSignal {
  private signal = deferred();

  /** Resolves on the next wake(), or after timeoutMs. */
  wait(timeoutMs: number): Promise<void> {
    const signal = this.signal.promise;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      void signal.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Wakes every current waiter; later waits wait for the next wake(). */
  wake(): void {
    const old = this.signal;
    this.signal = deferred();
    old.resolve();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The error of a read below the log's first seq (same text for every implementation). */
export function logTrimmed(fromSeq: bigint, firstSeq: bigint): ReplicatorError {
  return new ReplicatorError(ErrorCode.LOG_TRIMMED, `seq ${fromSeq} is no longer in the master's log, which starts at seq ${firstSeq}`);
}
