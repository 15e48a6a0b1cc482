import { ErrorCode, type ReplicatorError } from '../common/errors.js';

/** Process exit codes of the CLIs, documented in the README. */
export const ExitCode = {
  OK: 0,
  NOT_FOUND: 1,
  USAGE: 2,
  UNAVAILABLE: 3,
  STORE: 4,
  REFUSED: 5,
  NOT_AUTHORIZED: 6,
  /** The write is committed on the master but fewer followers than asked acknowledged it in time. */
  NOT_REPLICATED: 7,
  INTERNAL: 70,
} as const;

export const EXIT_CODE: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: ExitCode.USAGE,
  EMPTY_KEY: ExitCode.USAGE,
  KEY_TOO_LARGE: ExitCode.USAGE,
  VALUE_TOO_LARGE: ExitCode.USAGE,
  BATCH_TOO_LARGE: ExitCode.USAGE,
  INVALID_FOLLOWER_ID: ExitCode.USAGE,
  INVALID_ADDRESS: ExitCode.USAGE,
  KEY_NOT_FOUND: ExitCode.NOT_FOUND,
  STORE_NOT_FOUND: ExitCode.STORE,
  DATA_DIR_LOCKED: ExitCode.STORE,
  ADDRESS_IN_USE: ExitCode.UNAVAILABLE,
  MASTER_UNAVAILABLE: ExitCode.UNAVAILABLE,
  FOLLOWER_UNAVAILABLE: ExitCode.UNAVAILABLE,
  DEADLINE_EXCEEDED: ExitCode.UNAVAILABLE,
  LOG_TRIMMED: ExitCode.REFUSED,
  FOLLOWER_AHEAD: ExitCode.REFUSED,
  HISTORY_MISMATCH: ExitCode.REFUSED,
  DUPLICATE_FOLLOWER: ExitCode.REFUSED,
  SEQ_GAP: ExitCode.INTERNAL,
  CORRUPT_ENTRY: ExitCode.STORE,
  STORE_FAILED: ExitCode.STORE,
  SHUTTING_DOWN: ExitCode.UNAVAILABLE,
  MALFORMED_REQUEST: ExitCode.USAGE,
  NOT_A_DATA_DIR: ExitCode.STORE,
  UNAUTHENTICATED: ExitCode.NOT_AUTHORIZED,
  PERMISSION_DENIED: ExitCode.NOT_AUTHORIZED,
  TLS_FAILED: ExitCode.NOT_AUTHORIZED,
  NOT_MASTER: ExitCode.REFUSED,
  NOT_ENOUGH_FOLLOWERS: ExitCode.UNAVAILABLE,
  REPLICATION_TIMEOUT: ExitCode.NOT_REPLICATED,
  SEQ_NOT_APPLIED: ExitCode.UNAVAILABLE,
  SLOT_NOT_FOUND: ExitCode.NOT_FOUND,
  FOLLOWER_CONNECTED: ExitCode.REFUSED,
  SLOT_DROPPED: ExitCode.REFUSED,
  UPGRADE_REQUIRED: ExitCode.STORE,
  STALE_EPOCH: ExitCode.REFUSED,
  FOLLOW_LOOP: ExitCode.REFUSED,
  PROMOTION_REFUSED: ExitCode.REFUSED,
  WRITES_PAUSED: ExitCode.UNAVAILABLE,
  EPOCH_CHANGED: ExitCode.UNAVAILABLE,
  NO_LEASE: ExitCode.UNAVAILABLE,
  INTERNAL: ExitCode.INTERNAL,
};


/** The exit code a CLI ends with for this error. */
export function exitCodeOf(err: ReplicatorError): number {
  return EXIT_CODE[err.code];
}
